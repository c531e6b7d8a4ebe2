//! How an errno value reads in messages.

/// The C library's text for an errno value, as Upstart prints it
/// (`Resource temporarily unavailable`, where nix says `Try again`).
pub fn strerror(errnum: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errnum).to_string();
    match text.rfind(" (os error ") {
        Some(i) => text.get(..i).unwrap_or(&text).to_string(),
        None => text,
    }
}
