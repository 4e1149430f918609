//! onesim (placeholder: built by the onesim work).
