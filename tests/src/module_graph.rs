//! The module graph of a crate, read from its source: one node per file, an edge wherever a
//! file names another file's module (`crate::…`, `super::…`, `self::…`, a child module by
//! name, `use` trees with braces, through `use` re-exports to the module that defines the
//! item). Items under `#[cfg(test)]` are left out: test code may reach anywhere. A `pub use`
//! whose name the module does not use itself is a pass-through, not an import: a `lib.rs`
//! that re-exports its children's types and defines a type they use is no circle, while
//! paths through the re-export count for the module that defines the item. Enough of
//! Rust's lexing (comments, strings, raw strings, char literals, lifetimes) is done that
//! paths inside them do not count.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// A crate of the workspace: its name and its directory.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub dir: PathBuf,
}

/// The workspace's crates, as the root `Cargo.toml` lists them.
pub fn workspace_members(root: &Path) -> Vec<Member> {
    let manifest = read_toml(&root.join("Cargo.toml"));
    let members = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace.members");
    members
        .iter()
        .map(|m| {
            let dir = root.join(m.as_str().expect("a member is a path"));
            let package = read_toml(&dir.join("Cargo.toml"));
            let name = package["package"]["name"]
                .as_str()
                .expect("package.name")
                .to_owned();
            Member { name, dir }
        })
        .collect()
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

/// The crate roots under `src/`: the library and every binary.
pub fn roots(crate_dir: &Path) -> Vec<PathBuf> {
    let manifest = read_toml(&crate_dir.join("Cargo.toml"));
    let mut roots = BTreeSet::new();
    let declared = |table: &toml::Value| {
        table
            .get("path")
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    };
    roots.insert(
        manifest
            .get("lib")
            .and_then(declared)
            .unwrap_or_else(|| "src/lib.rs".into()),
    );
    roots.insert("src/main.rs".into());
    if let Some(bins) = manifest.get("bin").and_then(toml::Value::as_array) {
        roots.extend(bins.iter().filter_map(declared));
    }
    if let Ok(entries) = std::fs::read_dir(crate_dir.join("src/bin")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rs") {
                roots.insert(format!("src/bin/{}", entry.file_name().to_string_lossy()));
            }
        }
    }
    roots
        .into_iter()
        .filter(|r| r.starts_with("src/"))
        .map(|r| crate_dir.join(r))
        .filter(|r| r.is_file())
        .collect()
}

/// One file naming another's module, where it first does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub file: PathBuf,
    pub line: usize,
    pub path: String,
}

/// A circle of files, each naming the next's module; the last names the first. The shortest
/// of its group: every file that reaches every other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub group: Vec<PathBuf>,
    pub files: Vec<PathBuf>,
    /// `references[i]` is where `files[i]` names `files[(i + 1) % len]`.
    pub references: Vec<Reference>,
}

impl Cycle {
    /// The file names in the circle, for assertions.
    pub fn names(&self) -> Vec<String> {
        self.files.iter().map(|f| display(f, None)).collect()
    }
}

fn display(file: &Path, base: Option<&Path>) -> String {
    let shown = base.and_then(|b| file.strip_prefix(b).ok()).unwrap_or(file);
    shown.to_string_lossy().into_owned()
}

/// A cycle printed with paths relative to a directory.
#[derive(Debug)]
pub struct Shown<'a>(pub &'a Cycle, pub &'a Path);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Shown(cycle, base) = self;
        let mut names: Vec<String> = cycle.files.iter().map(|p| display(p, Some(base))).collect();
        names.push(names[0].clone());
        writeln!(f, "{}", names.join(" -> "))?;
        if cycle.group.len() > cycle.files.len() {
            let group: Vec<String> = cycle.group.iter().map(|p| display(p, Some(base))).collect();
            writeln!(
                f,
                "    (one circle of {} files that all reach each other: {})",
                group.len(),
                group.join(", ")
            )?;
        }
        for r in &cycle.references {
            writeln!(
                f,
                "    {}:{}: {}",
                display(&r.file, Some(base)),
                r.line,
                r.path
            )?;
        }
        Ok(())
    }
}

/// Every circle between the files of the crate in `crate_dir`: one per group of files that
/// reach each other (a strongly connected component), over each root's module tree.
pub fn crate_cycles(crate_dir: &Path) -> Vec<Cycle> {
    roots(crate_dir)
        .iter()
        .flat_map(|root| Graph::of_root(root).cycles())
        .collect()
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    PathSep,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Tokens of Rust source without comments, strings and char literals.
fn lex(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&chars, i, &mut line);
        } else if c == '\'' {
            i = skip_quote(&chars, i, &mut line);
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let prefix = matches!(word.as_str(), "r" | "b" | "br" | "c" | "cr");
            if prefix
                && word.ends_with('r')
                && (at(i) == '#' || at(i) == '"')
                && is_raw_string(&chars, i)
            {
                i = skip_raw_string(&chars, i, &mut line);
            } else if prefix && at(i) == '"' {
                i = skip_string(&chars, i, &mut line);
            } else if word == "b" && at(i) == '\'' {
                i = skip_quote(&chars, i, &mut line);
            } else if word == "r" && at(i) == '#' {
                // A raw identifier (`r#type`): the word after the '#'.
                i += 1;
            } else {
                out.push(Token {
                    tok: Tok::Word(word),
                    line,
                });
            }
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    out
}

fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            c => {
                if c == '\n' {
                    *line += 1;
                }
                i += 1;
            }
        }
    }
    i
}

fn is_raw_string(chars: &[char], mut i: usize) -> bool {
    while chars.get(i) == Some(&'#') {
        i += 1;
    }
    chars.get(i) == Some(&'"')
}

fn skip_raw_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut hashes = 0;
    while chars[i] == '#' {
        hashes += 1;
        i += 1;
    }
    i += 1;
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        if chars[i] == '\n' {
            *line += 1;
        }
        i += 1;
    }
    i
}

/// A char literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime (`'a`), from its quote.
fn skip_quote(chars: &[char], i: usize, line: &mut usize) -> usize {
    if chars.get(i + 1) == Some(&'\\') {
        let mut j = i + 3;
        while j < chars.len() && chars[j] != '\'' {
            j += 1;
        }
        return j + 1;
    }
    if chars.get(i + 2) == Some(&'\'') {
        if chars.get(i + 1) == Some(&'\n') {
            *line += 1;
        }
        return i + 3;
    }
    // A lifetime: the quote alone; its name lexes as a word that is never followed by `::`.
    i + 1
}

// ---------------------------------------------------------------- one file

/// A path as written, in the (inline) module it is written in.
#[derive(Debug, Clone)]
struct WrittenPath {
    /// The module it is written in, from the crate root.
    module: Vec<String>,
    segments: Vec<String>,
    /// For a `use`: the name it binds (`None` for a glob).
    binds: Option<String>,
    /// A `pub use` (any visibility).
    reexport: bool,
    line: usize,
}

#[derive(Debug, Default)]
struct FileScan {
    /// Modules declared in this file: `(module path, in a file of its own)`.
    modules: Vec<(Vec<String>, bool)>,
    paths: Vec<WrittenPath>,
    /// How often each word occurs outside test code.
    words: HashMap<String, usize>,
}

fn word(tokens: &[Token], i: usize) -> Option<&str> {
    match tokens.get(i).map(|t| &t.tok) {
        Some(Tok::Word(w)) => Some(w),
        _ => None,
    }
}

fn is(tokens: &[Token], i: usize, tok: &Tok) -> bool {
    tokens.get(i).is_some_and(|t| &t.tok == tok)
}

const OPEN: [char; 3] = ['(', '[', '{'];
const CLOSE: [char; 3] = [')', ']', '}'];

/// The index just past the item starting at `i`: its `;`, or the end of its first block.
fn skip_item(tokens: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < tokens.len() {
        match tokens[i].tok {
            Tok::Punct(c) if OPEN.contains(&c) => depth += 1,
            Tok::Punct(c) if CLOSE.contains(&c) => {
                depth = depth.saturating_sub(1);
                if depth == 0 && c == '}' {
                    return i + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// The words of the attribute whose `#` is at `i`, and the index past it.
fn attribute(tokens: &[Token], i: usize) -> (String, usize) {
    let start = if is(tokens, i + 1, &Tok::Punct('!')) {
        i + 2
    } else {
        i + 1
    };
    let end = skip_bracketed(tokens, start);
    let text = tokens[start + 1..end.saturating_sub(1).max(start + 1)]
        .iter()
        .map(|t| match &t.tok {
            Tok::Word(w) => w.clone(),
            Tok::PathSep => "::".into(),
            Tok::Punct(c) => c.to_string(),
        })
        .collect();
    (text, end)
}

fn skip_bracketed(tokens: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < tokens.len() {
        match tokens[i].tok {
            Tok::Punct(c) if OPEN.contains(&c) => depth += 1,
            Tok::Punct(c) if CLOSE.contains(&c) => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

fn scan_file(source: &str, module: &[String]) -> FileScan {
    let tokens = lex(source);
    let mut scan = FileScan::default();
    // Inline modules open here: (path, brace depth inside them).
    let mut inline: Vec<(Vec<String>, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let current = inline.last().map_or(module, |(m, _)| m.as_slice()).to_vec();
        match &tokens[i].tok {
            Tok::Punct('#') => {
                let (text, end) = attribute(&tokens, i);
                let inner = is(&tokens, i + 1, &Tok::Punct('!'));
                if text == "cfg(test)" {
                    if inner {
                        // The whole file (or inline module) is test code.
                        return FileScan::default();
                    }
                    i = skip_item(&tokens, end);
                } else {
                    i = end;
                }
                continue;
            }
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth + 1) {
                    inline.pop();
                }
            }
            Tok::Word(w) if w == "mod" => {
                if let Some(name) = word(&tokens, i + 1) {
                    let mut path = current.clone();
                    path.push(name.to_owned());
                    if is(&tokens, i + 2, &Tok::Punct(';')) {
                        scan.modules.push((path, true));
                        i += 3;
                        continue;
                    }
                    if is(&tokens, i + 2, &Tok::Punct('{')) {
                        scan.modules.push((path.clone(), false));
                        depth += 1;
                        inline.push((path, depth));
                        i += 3;
                        continue;
                    }
                }
            }
            Tok::Word(w) if w == "use" => {
                let reexport = is_public(&tokens, i);
                let start = i + 1;
                if let Some(Tok::Word(_) | Tok::Punct('{')) = tokens.get(start).map(|t| &t.tok) {
                    let line = tokens[start].line;
                    let mut found = Vec::new();
                    i = use_tree(&tokens, start, &[], &mut found);
                    for t in &tokens[start..i] {
                        count(&mut scan.words, t);
                    }
                    scan.paths
                        .extend(found.into_iter().map(|(segments, binds)| WrittenPath {
                            module: current.clone(),
                            segments,
                            binds,
                            reexport,
                            line,
                        }));
                    continue;
                }
            }
            Tok::Word(w)
                if is(&tokens, i + 1, &Tok::PathSep)
                    && !(i > 0 && is(&tokens, i - 1, &Tok::PathSep))
                    && !w.starts_with(|c: char| c.is_uppercase())
                    && !(w == "crate" && i > 1 && word(&tokens, i - 1) == Some("in")) =>
            {
                let line = tokens[i].line;
                let mut segments = vec![w.clone()];
                let mut j = i + 2;
                while let Some(next) = word(&tokens, j) {
                    segments.push(next.to_owned());
                    j += 1;
                    if !is(&tokens, j, &Tok::PathSep) {
                        break;
                    }
                    j += 1;
                }
                for t in &tokens[i..j] {
                    count(&mut scan.words, t);
                }
                scan.paths.push(WrittenPath {
                    module: current.clone(),
                    segments,
                    binds: None,
                    reexport: false,
                    line,
                });
                i = j;
                continue;
            }
            _ => {}
        }
        count(&mut scan.words, &tokens[i]);
        i += 1;
    }
    scan
}

fn count(words: &mut HashMap<String, usize>, token: &Token) {
    if let Tok::Word(w) = &token.tok {
        *words.entry(w.clone()).or_default() += 1;
    }
}

/// Whether the `use` at `i` has a visibility (`pub`, `pub(crate)`, `pub(in …)`).
fn is_public(tokens: &[Token], i: usize) -> bool {
    if i >= 1 && word(tokens, i - 1) == Some("pub") {
        return true;
    }
    if i >= 1 && is(tokens, i - 1, &Tok::Punct(')')) {
        let mut j = i - 1;
        while j > 0 && !is(tokens, j, &Tok::Punct('(')) {
            j -= 1;
        }
        return j >= 1 && word(tokens, j - 1) == Some("pub");
    }
    false
}

/// Reads a `use` tree from `i`; pushes each leaf path with the name it binds. Returns the
/// index past the tree.
fn use_tree(
    tokens: &[Token],
    mut i: usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Option<String>)>,
) -> usize {
    let mut segments = prefix.to_vec();
    loop {
        match tokens.get(i).map(|t| &t.tok) {
            Some(Tok::Word(w)) => {
                segments.push(w.clone());
                i += 1;
                if is(tokens, i, &Tok::PathSep) {
                    i += 1;
                    continue;
                }
                let mut binds = segments.last().cloned();
                if segments.len() > 1 && binds.as_deref() == Some("self") {
                    segments.pop();
                    binds = segments.last().cloned();
                }
                if word(tokens, i) == Some("as") {
                    binds = word(tokens, i + 1).map(str::to_owned);
                    i += 2;
                }
                out.push((segments, binds));
                return i;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                while i < tokens.len() && !is(tokens, i, &Tok::Punct('}')) {
                    i = use_tree(tokens, i, &segments, out);
                    if is(tokens, i, &Tok::Punct(',')) {
                        i += 1;
                    }
                }
                return i + 1;
            }
            Some(Tok::Punct('*')) => {
                out.push((segments, None));
                return i + 1;
            }
            _ => return i,
        }
    }
}

// ---------------------------------------------------------------- one root's graph

/// Name → (the module the `use` is written in, its path).
type Bindings = HashMap<String, (Vec<String>, Vec<String>)>;

/// File → file it names → where it first does.
type Edges = BTreeMap<PathBuf, BTreeMap<PathBuf, Reference>>;

#[derive(Debug, Default)]
struct Graph {
    /// Every module (file or inline) and the file it is in.
    modules: HashMap<Vec<String>, PathBuf>,
    /// What each `use` binds, per module: name → (module written in, path).
    bindings: HashMap<Vec<String>, Bindings>,
    paths: Vec<(PathBuf, WrittenPath)>,
    words: HashMap<PathBuf, HashMap<String, usize>>,
}

/// Where a file's child modules live: next to a root or `mod.rs`, else in a folder of its name.
fn child_dir(file: &Path, is_root: bool) -> PathBuf {
    let dir = file.parent().expect("a file has a folder");
    let stem = file.file_stem().expect("a file name").to_string_lossy();
    if is_root || stem == "mod" {
        dir.to_owned()
    } else {
        dir.join(&*stem)
    }
}

impl Graph {
    fn of_root(root: &Path) -> Self {
        let mut graph = Self::default();
        let mut pending = vec![(root.to_owned(), Vec::<String>::new(), true)];
        while let Some((file, module, is_root)) = pending.pop() {
            let Ok(source) = std::fs::read_to_string(&file) else {
                continue;
            };
            let scan = scan_file(&source, &module);
            graph.modules.insert(module.clone(), file.clone());
            graph.words.insert(file.clone(), scan.words);
            let children = child_dir(&file, is_root);
            for (path, own_file) in scan.modules {
                if !own_file {
                    graph.modules.insert(path, file.clone());
                    continue;
                }
                let mut dir = children.clone();
                for inline in &path[module.len()..path.len() - 1] {
                    dir.push(inline);
                }
                let name = path.last().expect("a module has a name");
                let flat = dir.join(format!("{name}.rs"));
                let nested = dir.join(name).join("mod.rs");
                let found = if flat.is_file() { flat } else { nested };
                pending.push((found, path, false));
            }
            for written in scan.paths {
                if let Some(name) = &written.binds {
                    graph
                        .bindings
                        .entry(written.module.clone())
                        .or_default()
                        .insert(
                            name.clone(),
                            (written.module.clone(), written.segments.clone()),
                        );
                }
                graph.paths.push((file.clone(), written));
            }
        }
        graph
    }

    /// The module a path names (its longest module prefix, followed through `use`
    /// re-exports), or `None` when it names nothing of this crate.
    fn resolve(&self, module: &[String], segments: &[String], hops: usize) -> Option<Vec<String>> {
        let (mut current, rest): (Vec<String>, &[String]) = match segments.first()?.as_str() {
            "crate" => (Vec::new(), &segments[1..]),
            "self" => (module.to_vec(), &segments[1..]),
            "super" => {
                let mut base = module.to_vec();
                let supers = segments.iter().take_while(|s| *s == "super").count();
                for _ in 0..supers {
                    base.pop()?;
                }
                (base, &segments[supers..])
            }
            first => {
                let mut child = module.to_vec();
                child.push(first.to_owned());
                if !self.modules.contains_key(&child) {
                    return None;
                }
                (module.to_vec(), segments)
            }
        };
        let mut used = 0;
        for segment in rest {
            let mut next = current.clone();
            next.push(segment.clone());
            if !self.modules.contains_key(&next) {
                break;
            }
            current = next;
            used += 1;
        }
        let remaining = &rest[used..];
        if let Some(name) = remaining.first()
            && hops < 8
            && let Some((written_in, path)) = self.bindings.get(&current).and_then(|b| b.get(name))
        {
            let mut through = path.clone();
            through.extend_from_slice(&remaining[1..]);
            if let Some(found) = self.resolve(written_in, &through, hops + 1) {
                return Some(found);
            }
        }
        Some(current)
    }

    /// A `pub use` of a name its file uses nowhere else.
    fn passes_through(&self, file: &Path, written: &WrittenPath) -> bool {
        let Some(name) = written.binds.as_ref().filter(|_| written.reexport) else {
            return false;
        };
        self.words
            .get(file)
            .and_then(|words| words.get(name))
            .is_none_or(|n| *n <= 1)
    }

    fn edges(&self) -> Edges {
        let mut edges = Edges::new();
        for file in self.modules.values() {
            edges.entry(file.clone()).or_default();
        }
        for (file, written) in &self.paths {
            let Some(target) = self.resolve(&written.module, &written.segments, 0) else {
                continue;
            };
            let Some(to) = self.modules.get(&target) else {
                continue;
            };
            if to == file || self.passes_through(file, written) {
                continue;
            }
            let reference = Reference {
                file: file.clone(),
                line: written.line,
                path: written.segments.join("::"),
            };
            let out = edges.entry(file.clone()).or_default();
            let kept = out.entry(to.clone()).or_insert_with(|| reference.clone());
            if reference.line < kept.line {
                *kept = reference;
            }
        }
        edges
    }

    fn cycles(&self) -> Vec<Cycle> {
        let edges = self.edges();
        strongly_connected(&edges)
            .into_iter()
            .filter(|group| group.len() > 1)
            .map(|group| shortest_cycle(&edges, &group))
            .collect()
    }
}

/// Tarjan's strongly connected components.
fn strongly_connected(edges: &Edges) -> Vec<Vec<PathBuf>> {
    struct Walk<'a> {
        edges: &'a Edges,
        index: HashMap<&'a PathBuf, usize>,
        low: HashMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        groups: Vec<Vec<PathBuf>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a PathBuf) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flat_map(BTreeMap::keys) {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    group.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                group.sort();
                self.groups.push(group);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.groups
}

/// The shortest circle inside the group.
fn shortest_cycle(edges: &Edges, group: &[PathBuf]) -> Cycle {
    group
        .iter()
        .map(|start| cycle_through(edges, group, start))
        .min_by_key(|cycle| cycle.files.len())
        .expect("a group of two or more")
}

/// The shortest circle through `start` inside the group (breadth first).
fn cycle_through(edges: &Edges, group: &[PathBuf], start: &PathBuf) -> Cycle {
    let members: BTreeSet<&PathBuf> = group.iter().collect();
    let mut came_from: HashMap<&PathBuf, &PathBuf> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut last = None;
    'search: while let Some(v) = queue.pop_front() {
        for w in edges[v].keys().filter(|w| members.contains(w)) {
            if w == start {
                last = Some(v);
                break 'search;
            }
            if !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    let mut files = vec![last.expect("a group of two or more holds a circle").clone()];
    while files.last() != Some(start) {
        let previous = came_from[files.last().expect("not empty")];
        files.push(previous.clone());
    }
    files.reverse();
    let references = (0..files.len())
        .map(|k| edges[&files[k]][&files[(k + 1) % files.len()]].clone())
        .collect();
    Cycle {
        group: group.to_vec(),
        files,
        references,
    }
}
