#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openim_fuzz::gob_struct(data));
