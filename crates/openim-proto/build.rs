//! Compiles `proto/**/*.proto` with the pure-Rust `protox` compiler (no `protoc` on any machine or
//! target) and generates prost messages, tonic services and serde derives that read and write the
//! same JSON as OpenIM's Go server: field names exactly as declared in the .proto files, 64-bit
//! integers as JSON numbers, `bytes` as base64, and `null` read as the field's default.

use std::path::{Path, PathBuf};

use prost_types::field_descriptor_proto::{Label, Type};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("proto");
    let mut files = Vec::new();
    collect_protos(&root, &mut files)?;
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!("cargo:rerun-if-changed=proto");

    let fds = protox::compile(&files, [&root])?;

    let mut builder = tonic_prost_build::configure().include_file("_includes.rs").build_client(true).build_server(true);
    for file in &fds.file {
        let package = file.package();
        // OpenIM's scalar wrappers are bare JSON values; `src/json.rs` implements them by hand.
        if package == WRAPPERS_PACKAGE {
            continue;
        }
        builder = builder.message_attribute(
            format!(".{package}"),
            "#[derive(::serde::Serialize, ::serde::Deserialize)] #[serde(default)]",
        );
        for message in &file.message_type {
            builder = annotate_message(builder, &format!(".{package}"), message);
        }
    }
    builder.compile_fds(fds)?;
    Ok(())
}

const WRAPPERS_PACKAGE: &str = "openim.protobuf";

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

/// Adds the per-field serde attributes that make the generated structs speak OpenIM's JSON.
fn annotate_message(
    mut builder: tonic_prost_build::Builder,
    parent: &str,
    message: &prost_types::DescriptorProto,
) -> tonic_prost_build::Builder {
    let path = format!("{parent}.{}", message.name());
    let is_map_entry = message.options.as_ref().is_some_and(|o| o.map_entry());
    if is_map_entry {
        return builder;
    }
    for field in &message.field {
        // A proto3 `optional` field sits in a synthetic oneof but is a plain field on the wire.
        if field.oneof_index.is_some() && !field.proto3_optional() {
            continue;
        }
        let name = field.name();
        let repeated = field.label() == Label::Repeated;
        let with = match (field.r#type(), repeated) {
            (Type::Bytes, false) => "with = \"crate::json::base64_bytes\"",
            _ => "deserialize_with = \"crate::json::null_as_default\"",
        };
        builder = builder.field_attribute(format!("{path}.{name}"), format!("#[serde(rename = \"{name}\", {with})]"));
    }
    for nested in &message.nested_type {
        builder = annotate_message(builder, &path, nested);
    }
    builder
}
