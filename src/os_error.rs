//! How an errno value reads in messages.

/// The C library's text for an errno value, as Upstart prints it
/// (`Resource temporarily unavailable`, where nix says `Try again`).
pub fn strerror(errnum: i32) -> String {
    without_errno(&std::io::Error::from_raw_os_error(errnum).to_string()).to_string()
}

/// An error text without the " (os error N)" Rust appends to the C
/// library's, which Upstart's messages never carry.
pub fn without_errno(text: &str) -> &str {
    text.split_once(" (os error")
        .map_or(text, |(reason, _)| reason)
}
