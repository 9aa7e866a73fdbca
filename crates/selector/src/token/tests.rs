use super::*;

fn kinds(input: &str) -> Vec<&'static str> {
    tokenize(input).unwrap().into_iter().map(|t| t.kind.name()).collect()
}

#[test]
fn operators_and_words() {
    assert_eq!(
        kinds("a notin\"bar\"&&!has(foo)||b in\"c\""),
        ["label", "not_in", "string_literal", "and", "not", "has", "or", "label", "in", "string_literal", "eof"]
    );
    assert_eq!(kinds("a not \t in {}"), ["label", "not_in", "lbrace", "rbrace", "eof"]);
    assert_eq!(kinds("in in {}"), ["label", "in", "lbrace", "rbrace", "eof"]);
    assert_eq!(kinds("a!='x'"), ["label", "ne", "string_literal", "eof"]);
    assert_eq!(kinds("!!x"), ["not", "not", "label", "eof"]);
    // Words are labels unless followed by '('.
    assert!(tokenize("all has global").is_err());
    assert_eq!(kinds("all == 'x'"), ["label", "eq", "string_literal", "eof"]);
    assert_eq!(kinds("has( a.b/c-d_1 )"), ["has", "eof"]);
    assert_eq!(kinds("all( \t)"), ["all", "eof"]);
    assert_eq!(kinds(""), ["eof"]);
    assert_eq!(kinds(" \t "), ["eof"]);
}

#[test]
fn operator_words_need_a_boundary() {
    assert!(tokenize("a inx {}").is_err());
    assert!(tokenize("a containsx 'x'").is_err());
    assert!(tokenize("a startswithx 'x'").is_err());
    assert!(tokenize("a in-x").is_err());
    // Upstream quirk: after a two-word operator the boundary check skips blanks.
    assert_eq!(kinds("a in b"), ["label", "in", "label", "eof"]);
    assert_eq!(kinds("a contains b"), ["label", "contains", "label", "eof"]);
    for input in ["b starts with b", "b endswith b", "b not in  b", "b notin -"] {
        assert!(tokenize(input).is_err(), "{input}");
    }
    let err = tokenize("b starts with b").unwrap_err();
    assert_eq!((err.position, err.expected.as_str()), (14, "a string literal"));
    let err = tokenize("b not in x").unwrap_err();
    assert_eq!((err.position, err.expected.as_str()), (9, "'{'"));
    assert_eq!(kinds("a not in ("), ["label", "not_in", "lparen", "eof"]);
    assert_eq!(kinds("a in{}"), ["label", "in", "lbrace", "rbrace", "eof"]);
    assert_eq!(kinds("a contains'x'"), ["label", "contains", "string_literal", "eof"]);
}

#[test]
fn has_must_be_contiguous() {
    // "has (" is a label followed by a paren: tokenizes, but is no has().
    assert_eq!(kinds("has (a)"), ["label", "lparen", "label", "rparen", "eof"]);
}

#[test]
fn whitespace_is_space_and_tab_only() {
    for ws in ["\n", "\r", "\u{b}", "\u{c}", "\u{a0}", "\u{2003}"] {
        let input = format!("a == 'b'{ws}");
        let err = tokenize(&input).unwrap_err();
        assert_eq!(err.position, 8, "{ws:?}");
    }
    assert!(tokenize("\ta\t==\t'b'\t").is_ok());
    // Inside a string literal anything goes, newlines included.
    let toks = tokenize("a == 'x\ny'").unwrap();
    assert_eq!(toks[2].value.as_deref(), Some("x\ny"));
}

#[test]
fn label_length_limit() {
    let ok = "a".repeat(512);
    let toks = tokenize(&format!("{ok} == 'v'")).unwrap();
    assert_eq!(toks[0].value.as_deref(), Some(ok.as_str()));
    assert!(tokenize(&format!("has({ok})")).is_ok());

    let long = "a".repeat(513);
    let err = tokenize(&format!("x == 'v' && {long} == 'v'")).unwrap_err();
    assert_eq!(err.position, 12);
    assert_eq!(err.expected, "a label of at most 512 characters");
    assert_eq!(err.found, "a label of 513 characters");
    let err = tokenize(&format!("has( {long})")).unwrap_err();
    assert_eq!(err.position, 5);
}

#[test]
fn errors() {
    let err = tokenize("label = \"value\"").unwrap_err();
    assert_eq!((err.position, err.expected.as_str()), (6, "'=='"));
    assert_eq!(err.found, "'= '");
    let err = tokenize("a == 'b' &").unwrap_err();
    assert_eq!((err.position, err.found.as_str()), (9, "'&'"));
    let err = tokenize("a == \"b").unwrap_err();
    assert_eq!(err.position, 7);
    assert_eq!(err.expected, "a closing '\"'");
    assert_eq!(err.found, "end of input");
    let err = tokenize("label starts foo \"value\"").unwrap_err();
    assert_eq!((err.position, err.expected.as_str()), (13, "'with'"));
    assert_eq!(err.found, "'foo'");
    let err = tokenize("label squiggles 'v'").unwrap_err();
    assert_eq!((err.position, err.expected.as_str()), (6, OPERATOR));
    assert_eq!(err.found, "'squiggles'");
    let err = tokenize("has()").unwrap_err();
    assert_eq!((err.position, err.expected.as_str()), (4, "a label"));
    assert_eq!(err.found, "')'");
    let err = tokenize("has(foo").unwrap_err();
    assert_eq!((err.position, err.expected.as_str()), (7, "')'"));
    let err = tokenize("global( x").unwrap_err();
    assert_eq!((err.position, err.found.as_str()), (8, "'x'"));
    let err = tokenize("a == 'b' && é").unwrap_err();
    assert_eq!((err.position, err.found.as_str()), (12, "'é'"));
    assert_eq!(err.to_string(), format!("at position 12: expected {ANY_TOKEN}, found 'é'"));
}
