//! The client against a tiny axum stand-in for `formwork serve` that answers OneForm-shaped
//! documents, errors and operation records.
