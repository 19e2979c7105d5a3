//! The official OpenIM SDK core (npm `@openim/wasm-client-sdk`: openim-sdk-core 3.8 compiled to
//! WebAssembly) in headless Chromium against this binary's `openim standalone`: one test per app
//! flow of `tests/sdk/*.test.mjs` (flows, groups, media), so a failure names the flow. `cargo
//! xtask ci` installs Chromium and the node modules; run one flow by hand with `node --test
//! --test-name-pattern='^05 '` in `tests/sdk` (see its README).

use std::path::PathBuf;
use std::process::Command;

/// Runs the flow of `file` whose name starts with `number` and fails with its output.
fn flow(file: &str, number: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/sdk");
    assert!(
        dir.join("node_modules/@openim/wasm-client-sdk").exists(),
        "the official SDK is not installed: run `npm ci --ignore-scripts` in {} (cargo xtask ci does)",
        dir.display()
    );
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", &format!("--test-name-pattern=^{number} "), file])
        .current_dir(&dir)
        .env("OPENIM_BIN", env!("CARGO_BIN_EXE_openim"))
        .output()
        .expect("node (Node.js 20+) on PATH");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "flow {number} failed:\n{report}");
    // A name pattern that matches nothing passes with no test run: make sure one ran.
    let passed =
        report.lines().any(|l| l.trim_start_matches(|c: char| !c.is_ascii_alphabetic()).trim_end() == "pass 1");
    assert!(passed, "flow {number} did not run:\n{report}");
}

macro_rules! flows {
    ($file:literal: $($name:ident = $number:literal;)*) => {
        $(
            #[test]
            fn $name() {
                flow($file, $number);
            }
        )*
    };
}

flows! {
    "flows.test.mjs":
    official_sdk_01_cors = "01";
    official_sdk_02_login_sync = "02";
    official_sdk_03_text_and_own_seq = "03";
    official_sdk_04_idle_web_client_stays = "04";
    official_sdk_05_unread_read_and_receipt = "05";
    official_sdk_06_friend_accepted = "06";
    official_sdk_07_friend_refused = "07";
    official_sdk_08_blacklist = "08";
    official_sdk_09_nickname_reaches_friend = "09";
    official_sdk_10_pin_and_dnd_on_second_device = "10";
    official_sdk_11_new_device_sync = "11";
    official_sdk_12_clear_on_other_device = "12";
    official_sdk_13_presence_subscription = "13";
    official_sdk_14_logout = "14";
    official_sdk_15_relogin = "15";
    official_sdk_16_business_notification = "16";
}

flows! {
    "groups.test.mjs":
    official_sdk_17_group_created = "17";
    official_sdk_18_group_application_approved = "18";
    official_sdk_19_group_invitation = "19";
    official_sdk_20_group_kick = "20";
    official_sdk_21_group_quit = "21";
    official_sdk_22_group_admin_mutes_member = "22";
    official_sdk_23_group_muted = "23";
    official_sdk_24_group_transferred = "24";
    official_sdk_25_group_dismissed = "25";
    official_sdk_26_group_changes_seen_at_login = "26";
    official_sdk_27_group_tips_and_announcement = "27";
}

flows! {
    "media.test.mjs":
    official_sdk_28_picture_message = "28";
    official_sdk_29_file_in_parts = "29";
    official_sdk_30_picture_thumbnail = "30";
    official_sdk_31_avatar_upload = "31";
}
