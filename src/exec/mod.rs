//! Child processes (placeholder: built by the exec work).
