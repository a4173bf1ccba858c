//! No two modules of one of our crates import each other, directly or through a chain: each
//! file can be read, and tested, with only what it imports (issue 13). The graph is read from
//! the source (`lapwing_system_tests::module_graph`); test code is left out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use lapwing_system_tests::module_graph::{Cycle, Shown, crate_cycles, workspace_members};

/// Crates whose circle is being removed on another branch. Each entry must still have a
/// circle (so it is taken out as soon as it is fixed); every other crate must have none.
const KNOWN_CYCLES: &[&str] = &[];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

#[test]
fn no_crate_of_the_workspace_has_an_import_circle() {
    let root = workspace_root();
    let members = workspace_members(&root);
    assert!(
        members.iter().any(|m| m.name == "lapwing") && members.len() >= 10,
        "the workspace's crates are found: {members:?}"
    );
    let mut problems = String::new();
    for member in &members {
        let cycles = crate_cycles(&member.dir);
        let known = KNOWN_CYCLES.contains(&member.name.as_str());
        if known && cycles.is_empty() {
            writeln!(
                problems,
                "{} has no import circle any more: remove it from KNOWN_CYCLES",
                member.name
            )
            .expect("a String takes any text");
        }
        if known {
            for cycle in &cycles {
                println!("{} (known): {}", member.name, Shown(cycle, &root));
            }
        }
        if !known && !cycles.is_empty() {
            writeln!(problems, "{} has import circles:", member.name)
                .expect("a String takes any text");
            for cycle in &cycles {
                write!(problems, "  {}", Shown(cycle, &root)).expect("a String takes any text");
            }
        }
    }
    assert!(problems.is_empty(), "\n{problems}");
}

// The reader itself, on small crates written for the purpose.

struct Crate(tempfile::TempDir);

impl Crate {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"c\"\n")
            .expect("write Cargo.toml");
        for (path, source) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
            std::fs::write(path, source).expect("write source");
        }
        Self(dir)
    }

    fn cycles(&self) -> Vec<Vec<String>> {
        crate_cycles(self.0.path())
            .iter()
            .map(|c: &Cycle| {
                c.files
                    .iter()
                    .map(|f| {
                        f.strip_prefix(self.0.path())
                            .expect("in the crate")
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect()
            })
            .collect()
    }
}

#[test]
fn a_circle_through_a_use_tree_and_an_expression_path_is_found_and_named() {
    let c = Crate::new(&[
        ("src/lib.rs", "pub mod a;\npub mod b;\npub mod leaf;\n"),
        (
            "src/a.rs",
            "use crate::{leaf::X, b::{self, Y}};\npub fn f() { b::g(); }\n",
        ),
        ("src/b.rs", "pub fn g() { crate::a::f(); }\n"),
        ("src/leaf.rs", "pub struct X;\n"),
    ]);
    assert_eq!(c.cycles(), [["src/a.rs", "src/b.rs"]]);
    let cycle = &crate_cycles(c.0.path())[0];
    assert_eq!(cycle.references[0].path, "crate::b");
    assert_eq!(cycle.references[1].path, "crate::a::f");
    assert_eq!(cycle.references[1].line, 1);
    let shown = Shown(cycle, c.0.path()).to_string();
    assert!(
        shown.starts_with("src/a.rs -> src/b.rs -> src/a.rs\n"),
        "{shown}"
    );
}

#[test]
fn a_longer_circle_through_nested_folders_and_super_is_found() {
    let c = Crate::new(&[
        ("src/main.rs", "mod net;\nmod store;\n"),
        ("src/net/mod.rs", "pub mod wire;\n"),
        ("src/net/wire.rs", "use super::super::store::Row;\n"),
        ("src/store.rs", "pub mod row;\npub use row::Row;\n"),
        ("src/store/row.rs", "pub struct Row(crate::net::Frame);\n"),
    ]);
    // row.rs names `Frame` in net/mod.rs, which only declares wire.rs: declaring is no import.
    assert_eq!(c.cycles(), Vec::<Vec<String>>::new());

    let c = Crate::new(&[
        ("src/main.rs", "mod net;\nmod store;\n"),
        ("src/net/mod.rs", "pub mod wire;\npub use wire::Frame;\n"),
        (
            "src/net/wire.rs",
            "pub struct Frame;\nuse super::super::store::Row;\n",
        ),
        ("src/store.rs", "pub mod row;\npub use row::Row;\n"),
        ("src/store/row.rs", "pub struct Row(crate::net::Frame);\n"),
    ]);
    // Both re-exports are followed to where the item lives.
    assert_eq!(c.cycles(), [["src/net/wire.rs", "src/store/row.rs"]]);
}

#[test]
fn the_root_naming_a_child_and_the_child_naming_the_root_is_a_circle() {
    let c = Crate::new(&[
        (
            "src/lib.rs",
            "mod tray;\npub fn start() { tray::create(); }\npub fn quit() {}\n",
        ),
        ("src/tray.rs", "pub fn create() { crate::quit(); }\n"),
    ]);
    assert_eq!(c.cycles(), [["src/lib.rs", "src/tray.rs"]]);
}

#[test]
fn test_code_comments_strings_and_re_exports_make_no_circle() {
    let c = Crate::new(&[
        (
            "src/lib.rs",
            "pub mod error;\npub mod wire;\npub use error::Error;\n\
             #[cfg(test)]\nmod tests { use crate::wire::decode; }\n",
        ),
        (
            "src/error.rs",
            "//! See [`crate::wire::decode`].\n\
             /* crate::wire::decode */\n\
             pub struct Error(&'static str);\n\
             const S: &str = \"crate::wire::decode\";\n\
             const R: &str = r#\"crate::wire::\"decode\"#;\n\
             const C: char = '\"';\n\
             #[cfg(test)]\nmod tests { use super::super::wire; }\n",
        ),
        (
            "src/wire.rs",
            "use crate::Error;\npub fn decode<'a>(b: &'a [u8]) -> Result<&'a [u8], Error> { Ok(b) }\n",
        ),
    ]);
    assert_eq!(c.cycles(), Vec::<Vec<String>>::new());
}

#[test]
fn a_re_export_the_root_does_not_use_itself_is_no_import() {
    let facade = "pub mod file;\npub use file::Store;\npub struct Secret;\n";
    let child = "pub struct Store(crate::Secret);\n";
    let c = Crate::new(&[("src/lib.rs", facade), ("src/file.rs", child)]);
    assert_eq!(c.cycles(), Vec::<Vec<String>>::new());

    let uses_it = format!("{facade}pub fn open() -> Store {{ Store(Secret) }}\n");
    let c = Crate::new(&[("src/lib.rs", &uses_it), ("src/file.rs", child)]);
    assert_eq!(c.cycles(), [["src/file.rs", "src/lib.rs"]]);
}

#[test]
fn a_group_is_shown_by_its_shortest_circle_and_all_its_files() {
    let c = Crate::new(&[
        ("src/lib.rs", "mod a;\nmod b;\nmod c;\n"),
        ("src/a.rs", "use crate::b::B;\npub struct A;\n"),
        ("src/b.rs", "pub struct B(crate::a::A, crate::c::C);\n"),
        ("src/c.rs", "pub struct C(Box<crate::a::A>);\n"),
    ]);
    assert_eq!(c.cycles(), [["src/a.rs", "src/b.rs"]]);
    let cycle = &crate_cycles(c.0.path())[0];
    assert_eq!(cycle.group.len(), 3);
    let shown = Shown(cycle, c.0.path()).to_string();
    assert!(
        shown.contains("3 files that all reach each other: src/a.rs, src/b.rs, src/c.rs"),
        "{shown}"
    );
}
