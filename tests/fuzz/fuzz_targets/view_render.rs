#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| callboard_fuzz::view_render::run(data));
