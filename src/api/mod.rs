//! The REST API: OneForm's routes over the service, for OpenNebula's users. [`auth`] decides
//! who is calling.

pub mod auth;
