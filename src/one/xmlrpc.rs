//! XML-RPC (placeholder: built by the client work).
