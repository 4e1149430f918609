//! libFuzzer target: a deployment template's `{# ... #}` metadata, Jinja2 syntax and
//! `one_objects` (`formwork_fuzz::j2_metadata`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = formwork_fuzz::j2_metadata(data);
});
