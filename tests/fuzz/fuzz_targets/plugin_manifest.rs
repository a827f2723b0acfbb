#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| callboard_fuzz::plugin_manifest::run(data));
