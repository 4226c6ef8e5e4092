//! The engine stays a set of small parts: no function in `src/` is longer than 100 lines
//! (docs/architecture.md, "The engine"). A function's length runs from its `fn` line to the line
//! that closes its body, counted by braces outside string and character literals and comments.

use std::path::Path;

const MAX_LINES: usize = 100;

/// `line` without string / char literals and line comments (their braces do not count).
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            // a char literal ('{', '\n'); a lifetime ('a) has no closing quote two places on
            '\'' => {
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') || rest.chars().nth(1) == Some('\'') {
                    let skip = if rest.starts_with('\\') { 3 } else { 2 };
                    for _ in 0..skip {
                        chars.next();
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            other => out.push(other),
        }
    }
    out
}

fn is_fn_start(line: &str) -> bool {
    let t = line.trim_start();
    let t = t.strip_prefix("pub(crate) ").or_else(|| t.strip_prefix("pub ")).unwrap_or(t);
    let t = t.strip_prefix("const ").unwrap_or(t);
    t.starts_with("fn ")
}

/// `(line, length, signature)` of every function in `text` longer than `max` lines.
fn long_functions(text: &str, max: usize) -> Vec<(usize, usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !is_fn_start(line) {
            continue;
        }
        let (mut depth, mut opened) = (0i64, false);
        for (j, l) in lines.iter().enumerate().skip(i) {
            let code = code_of(l);
            depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
            opened |= code.contains('{');
            if !opened && code.trim_end().ends_with(';') {
                break; // a declaration without a body
            }
            if opened && depth <= 0 {
                if j - i + 1 > max {
                    out.push((i + 1, j - i + 1, line.trim().to_string()));
                }
                break;
            }
        }
    }
    out
}

#[test]
fn the_scanner_measures_functions() {
    let body: String = (0..5).map(|_| "    let s = \"}}\"; // }\n").collect();
    let text = format!("fn a() {{\n{body}}}\nfn b() {{ let c = '{{'; }}\n");
    assert_eq!(long_functions(&text, 7), vec![]);
    assert_eq!(long_functions(&text, 6), vec![(1, 7, "fn a() {".to_string())]);
}

#[test]
fn no_function_in_the_training_crate_is_longer_than_100_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            for (line, n, sig) in long_functions(&std::fs::read_to_string(&path).unwrap(), MAX_LINES) {
                long.push(format!("{}:{line} ({n} lines) {sig}", path.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    assert!(long.is_empty(), "functions over {MAX_LINES} lines: {long:?}");
}
