#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openim_fuzz::ws_frame(data));
