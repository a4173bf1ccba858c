//! Names as they are shown: without the root's trailing dot, which every source's answers
//! carry and no reader wants to see.

use hickory_resolver::proto::rr::Name;

pub(super) fn display_name(name: &Name) -> String {
    let text = name.to_string();
    trim_dot(&text).to_owned()
}

pub(super) fn trim_dot(name: &str) -> &str {
    if name.len() > 1 {
        name.strip_suffix('.').unwrap_or(name)
    } else {
        name
    }
}
