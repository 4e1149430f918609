//! libFuzzer target: `variables.tf`, `validators.tf` and `provider.tf` (NUL-separated) through
//! the HCL parser and the input extraction (`formwork_fuzz::hcl_inputs`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = formwork_fuzz::hcl_inputs(data);
});
