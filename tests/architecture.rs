//! The module graph of `src/`: no module imports from one that imports from it (directly or
//! through others), and each layer uses only the layers below it (README, "Architecture").
//!
//! Read from the source text: every `use` and every `crate::`/`super::`/`self::` path outside
//! comments and `#[cfg(test)]` modules is an edge to the deepest module it names. Re-exports
//! count too, so a file must import its siblings directly, not through its parent's `pub use`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The layers, each allowed to use only those after it in this list (and `json`, `random`).
const LAYERS: &[&str] = &[
    "gateway",
    "config",
    "http",
    "transport",
    "chat",
    "socketio",
    "cluster",
    "store",
    "engineio",
];

/// Modules every layer may use: small leaves with no dependencies of their own in the crate.
const LEAVES: &[&str] = &[
    "json", "random", "assets", "logger", "systemd", "fdlimit", "budget", "host",
];

#[test]
fn no_module_imports_from_one_that_imports_from_it() {
    let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    // The reading must see the graph it checks, or the test would pass on nothing.
    for (from, to) in [
        ("chat::app", "socketio"),
        ("socketio::client", "socketio::namespace"),
        ("transport::polling", "engineio"),
        ("store::handle", "store::writer"),
        ("http", "transport"),
    ] {
        assert!(
            graph.get(from).is_some_and(|edges| edges.contains(to)),
            "the reader missed {from} -> {to}: {graph:#?}"
        );
    }
    let cycles = cycles(&graph);
    assert!(
        cycles.is_empty(),
        "import cycles:\n{}",
        cycles
            .iter()
            .map(|cycle| cycle.join(" -> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn layers_use_only_the_layers_below_them() {
    let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut wrong = Vec::new();
    for (from, edges) in &graph {
        let from_top = top(from);
        let Some(from_rank) = LAYERS.iter().position(|layer| *layer == from_top) else {
            continue;
        };
        for to in edges {
            let to_top = top(to);
            if to_top == from_top || LEAVES.contains(&to_top) {
                continue;
            }
            match LAYERS.iter().position(|layer| *layer == to_top) {
                Some(to_rank) if to_rank > from_rank => {}
                _ => wrong.push(format!("{from} -> {to}")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "upward or unlisted imports:\n{}",
        wrong.join("\n")
    );
    for leaf in LEAVES {
        let uses: Vec<_> = graph
            .iter()
            .filter(|(from, _)| top(from) == *leaf)
            .flat_map(|(_, edges)| edges.iter().filter(|to| top(to) != *leaf))
            .collect();
        assert!(uses.is_empty(), "leaf {leaf} imports {uses:?}");
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: Graph = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a", "d"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(from, to)| (from.into(), to.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&graph), vec![vec!["a", "b", "c", "a"]]);
    let paths = use_paths("use super::{a::{self, X}, b::Y as Z};");
    assert_eq!(paths, ["super::a", "super::a::X", "super::b::Y"]);
}

/// Every `pub` item of `src/` is named somewhere besides its definition: in the crate's code
/// (test modules left out), `main.rs`, the examples, the fuzz targets or `tests/`. A name match
/// is a weak proof of use (a common name like `new` always matches), but an item nobody calls
/// by its own name is dead for certain.
#[test]
fn every_public_item_is_named_somewhere_else() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = Vec::new();
    for dir in ["src", "examples", "tests", "fuzz/fuzz_targets"] {
        collect_sources(&root.join(dir), &mut sources);
    }
    let code: Vec<(String, String)> = sources
        .iter()
        .map(|(path, text)| (path.clone(), code_only(text)))
        .collect();
    let mut checked = 0;
    let mut unused = Vec::new();
    for (path, text) in code.iter().filter(|(path, _)| path.contains("/src/")) {
        // A module compiled for tests only (`#[cfg(test)] mod testing;`) may serve tests only.
        if text.starts_with("#![cfg(test)]") || path.ends_with("/testing.rs") {
            continue;
        }
        for name in public_items(text) {
            checked += 1;
            let uses: usize = code.iter().map(|(_, text)| count_word(text, &name)).sum();
            if uses < 2 {
                unused.push(format!("{path}: {name}"));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} public items found: the reader is broken"
    );
    assert!(
        unused.is_empty(),
        "public items named nowhere but their definition:\n{}",
        unused.join("\n")
    );
}

#[test]
fn the_public_item_reader_sees_items() {
    let code = "pub fn a() {}\npub(crate) fn b() {}\n    pub struct C;\npub const D: u8 = 0;\nfn e() {}\npub async fn f() {}\npub unsafe fn g() {}";
    assert_eq!(public_items(code), ["a", "C", "D", "f", "g"]);
    assert_eq!(count_word("a ab a_b a(a)", "a"), 3);
}

/// Names of the `pub` (not `pub(crate)`) functions, types, traits and constants in `code`.
fn public_items(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in code.lines() {
        let Some(mut rest) = line.trim_start().strip_prefix("pub ") else {
            continue;
        };
        for qualifier in ["const fn ", "async fn ", "unsafe fn "] {
            if rest.starts_with(qualifier) {
                // Keep the `fn `.
                rest = &rest[qualifier.len() - 3..];
                break;
            }
        }
        let Some(after) = [
            "fn ", "struct ", "enum ", "trait ", "const ", "static ", "type ",
        ]
        .iter()
        .find_map(|kind| rest.strip_prefix(kind)) else {
            continue;
        };
        let name: String = after
            .bytes()
            .take_while(|&b| is_ident(b))
            .map(char::from)
            .collect();
        if !name.is_empty() {
            names.push(name);
        }
    }
    names
}

/// How often `word` stands alone (not inside a longer identifier) in `text`.
fn count_word(text: &str, word: &str) -> usize {
    let bytes = text.as_bytes();
    text.match_indices(word)
        .filter(|&(at, _)| {
            let before = at.checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(at + word.len()).copied();
            !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
        })
        .count()
}

/// Every `.rs` file under `dir` with its path.
fn collect_sources(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.map(|entry| entry.unwrap().path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.to_string_lossy().into_owned(), text));
        }
    }
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// Module path (`socketio::client`) → the modules it imports from.
fn module_graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    collect_files(src, src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|(module, _)| module.clone()).collect();
    let mut graph = Graph::new();
    for (module, text) in &files {
        let code = code_only(text);
        let mut paths = Vec::new();
        for statement in use_statements(&code) {
            paths.extend(use_paths(statement));
        }
        paths.extend(inline_paths(&code));
        let edges = graph.entry(module.clone()).or_default();
        for path in paths {
            if let Some(target) = resolve(module, &path, &modules)
                && &target != module
            {
                edges.insert(target);
            }
        }
    }
    graph
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_files(root, &path, out);
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let relative = path.strip_prefix(root).unwrap().with_extension("");
        let mut parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        match parts.last().map(String::as_str) {
            // The binary is a crate of its own, using the library's public surface only.
            Some("main") if parts.len() == 1 => continue,
            Some("lib") if parts.len() == 1 => parts = vec!["crate".into()],
            Some("mod") => {
                parts.pop();
            }
            _ => {}
        }
        out.push((parts.join("::"), std::fs::read_to_string(&path).unwrap()));
    }
}

/// The source without comments and without `#[cfg(test)]` modules.
fn code_only(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text of each `use` statement, from `use` to `;`.
fn use_statements(code: &str) -> Vec<&str> {
    let mut statements = Vec::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let after = &rest[at..];
        let end = after.find(';').unwrap_or(after.len());
        statements.push(&after[..end]);
        rest = &after[end..];
    }
    statements
}

/// Position of `word` standing alone (not part of an identifier), at a statement start.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before_ok = at == 0 || !is_ident(bytes[at - 1]);
        let after_ok = bytes.get(at + word.len()).is_some_and(|b| *b == b' ');
        let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
        let prefix = text[line_start..at].trim();
        let statement_ok = prefix.is_empty() || prefix.starts_with("pub");
        if before_ok && after_ok && statement_ok {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn is_ident(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The paths a `use` statement names, its braces expanded (`self` names the prefix itself).
fn use_paths(statement: &str) -> Vec<String> {
    let tree: String = statement
        .trim_start_matches("pub(crate) ")
        .trim_start_matches("pub(super) ")
        .trim_start_matches("pub ")
        .trim_start_matches("use ")
        .trim_end_matches(';')
        .replace(" as ", "@")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut out = Vec::new();
    expand("", &tree, &mut out);
    out
}

fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let join = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_owned()
        } else {
            format!("{a}::{b}")
        }
    };
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let base = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&base, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&base, &inner[start..], out);
        return;
    }
    // `a::B as C` was written `a::B@C` by `use_paths`.
    let item = tree.split('@').next().unwrap_or(tree);
    if item.is_empty() {
        return;
    }
    if item == "self" {
        out.push(prefix.to_owned());
    } else if item != "*" {
        out.push(join(prefix, item));
    }
}

/// Paths written inline: `crate::a::b`, `super::a`, `self::a`.
fn inline_paths(code: &str) -> Vec<String> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for root in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(found) = code[from..].find(root) {
            let at = from + found;
            from = at + root.len();
            if at > 0 && (is_ident(bytes[at - 1]) || bytes[at - 1] == b':') {
                continue;
            }
            let mut end = at;
            while end < bytes.len() && (is_ident(bytes[end]) || bytes[end] == b':') {
                end += 1;
            }
            out.push(code[at..end].trim_end_matches(':').to_owned());
        }
    }
    out
}

/// The deepest module of `modules` that `path`, written in `module`, names.
fn resolve(module: &str, path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = if module == "crate" {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    match segments.first().copied() {
        Some("crate") => {
            base.clear();
            segments.remove(0);
        }
        Some("self") => {
            segments.remove(0);
        }
        Some("super") => {
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
        }
        _ => return None,
    }
    let mut full = base;
    full.extend(segments);
    (0..=full.len()).rev().find_map(|len| {
        let candidate = if len == 0 {
            "crate".to_owned()
        } else {
            full[..len].join("::")
        };
        modules.contains(&candidate).then_some(candidate)
    })
}

/// Cycles found by depth-first search (at least one in every tangle), each from its smallest
/// module.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut BTreeSet<Vec<String>>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle: Vec<String> = stack[at..].to_vec();
            let smallest = (0..cycle.len()).min_by_key(|&i| &cycle[i]).unwrap();
            cycle.rotate_left(smallest);
            cycle.push(cycle[0].clone());
            found.insert(cycle);
            return;
        }
        if done.contains(node) {
            return;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done, found);
        }
        stack.pop();
        done.insert(node.to_owned());
    }
    let mut found = BTreeSet::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found.into_iter().collect()
}
