//! OpenNebula objects (placeholder: built by the one work).
