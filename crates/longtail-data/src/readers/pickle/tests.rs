//! Unit tests of the pickle machine on hand-assembled pickles and on ones Python wrote.

use super::*;

/// A pickle being assembled opcode by opcode.
struct P(Vec<u8>);

impl P {
    fn new(protocol: u8) -> Self {
        P(vec![0x80, protocol])
    }

    fn op(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// A Python 2 `str` (SHORT_BINSTRING, or BINSTRING from 256 bytes).
    fn str8(self, s: &[u8]) -> Self {
        let head = if s.len() < 256 { vec![b'U', s.len() as u8] } else { [&[b'T'][..], &(s.len() as u32).to_le_bytes()].concat() };
        self.op(&head).op(s)
    }

    fn global(self, module: &str, name: &str) -> Self {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }

    fn int(self, v: i32) -> Self {
        self.op(b"J").op(&v.to_le_bytes())
    }

    /// A numpy array as Python 2 numpy pickles it: `_reconstruct` + BUILD, dtype REDUCE + BUILD.
    fn array(self, shape: &[i32], descr: &str, data: &[u8]) -> Self {
        let mut p = self.global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray").op(b"K\x00\x85").str8(b"b").op(b"\x87R");
        p = p.op(b"(K\x01(");
        for &d in shape {
            p = p.int(d);
        }
        p = p.op(b"t").global("numpy", "dtype").str8(descr.as_bytes()).op(b"K\x00K\x01\x87R");
        p = p.op(b"(K\x03").str8(b"|").op(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb");
        p.op(b"\x89").str8(data).op(b"tb")
    }

    fn stop(self) -> Vec<u8> {
        self.op(b".").0
    }
}

fn parse(bytes: &[u8]) -> Result<Pickle> {
    Pickle::parse(bytes, Path::new("x.pkl"))
}

fn parse_err(bytes: &[u8]) -> String {
    parse(bytes).unwrap_err().to_string()
}

/// `{'data': <2x3 uint8>, 'labels': [1, 300, -5, 70000], 'names': ['a', 'café'(latin-1)]}`.
fn py2_dict(descr: &str, data: &[u8]) -> Vec<u8> {
    let p = P::new(2).op(b"}q\x01(").str8(b"data").array(&[2, 3], descr, data);
    let p = p.str8(b"labels").op(b"]q\x02(K\x01M\x2c\x01").int(-5).int(70000).op(b"e");
    p.str8(b"names").op(b"]q\x03(").str8(b"a").str8(b"caf\xe9").op(b"eu").stop()
}

#[test]
fn reads_a_python2_style_dict_of_array_ints_and_latin1_strings() {
    let p = parse(&py2_dict("u1", &[1, 2, 3, 4, 5, 6])).unwrap();
    assert_eq!(p.root_kind(), "dict");
    assert_eq!(p.ints("labels").unwrap(), vec![1, 300, -5, 70000]);
    assert_eq!(p.texts("names").unwrap(), vec!["a", "café"]);
    let a = p.u8_array("data").unwrap();
    assert_eq!((a.shape.as_slice(), &a.data[..]), (&[2, 3][..], &[1, 2, 3, 4, 5, 6][..]));
    assert!(p.has("data") && !p.has("fine_labels"));
}

/// `pickle.dumps({'data': np.arange(6, dtype=np.uint8).reshape(2, 3), 'labels': [1, 2], 'b': b'xy'}, protocol=2)`
/// by Python 3.11 and numpy 2.4: bytes through `_codecs.encode`, BINUNICODE keys.
const PY3_PROTO2: &[u8] = b"\x80\x02}q\x00(X\x04\x00\x00\x00dataq\x01cnumpy._core.multiarray\n_reconstruct\nq\x02cnumpy\nndarray\nq\x03K\x00\x85q\x04c_codecs\nencode\nq\x05X\x01\x00\x00\x00bq\x06X\x06\x00\x00\x00latin1q\x07\x86q\x08Rq\t\x87q\nRq\x0b(K\x01K\x02K\x03\x86q\x0ccnumpy\ndtype\nq\rX\x02\x00\x00\x00u1q\x0e\x89\x88\x87q\x0fRq\x10(K\x03X\x01\x00\x00\x00|q\x11NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tq\x12b\x89h\x05X\x06\x00\x00\x00\x00\x01\x02\x03\x04\x05q\x13h\x07\x86q\x14Rq\x15tq\x16bX\x06\x00\x00\x00labelsq\x17]q\x18(K\x01K\x02eX\x01\x00\x00\x00bq\x19h\x05X\x02\x00\x00\x00xyq\x1ah\x07\x86q\x1bRq\x1cu.";

/// The same dict at protocol 4: FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINBYTES.
const PY3_PROTO4: &[u8] = b"\x80\x04\x95\xb6\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04data\x94\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x02K\x03\x86\x94h\x05\x8c\x05dtype\x94\x93\x94\x8c\x02u1\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b\x89C\x06\x00\x01\x02\x03\x04\x05\x94t\x94b\x8c\x06labels\x94]\x94(K\x01K\x02e\x8c\x01b\x94C\x02xy\x94u.";

#[test]
fn reads_what_python3_writes_at_protocols_2_and_4() {
    for bytes in [PY3_PROTO2, PY3_PROTO4] {
        let p = parse(bytes).unwrap();
        assert_eq!(p.ints("labels").unwrap(), vec![1, 2]);
        let a = p.u8_array("data").unwrap();
        assert_eq!((a.shape.as_slice(), &a.data[..]), (&[2, 3][..], &[0, 1, 2, 3, 4, 5][..]));
        assert_eq!(p.texts("labels").unwrap_err().to_string(), "x.pkl: `labels`[0] is a int, expected a str");
    }
}

#[test]
fn a_fortran_order_array_comes_out_in_c_order() {
    // column-major bytes of [[0, 1, 2], [3, 4, 5]]: the fortran flag of the state set
    let p = P::new(2).op(b"}(").str8(b"data").array(&[2, 3], "u1", &[0, 3, 1, 4, 2, 5]).op(b"u").stop();
    let at = p.windows(2).rposition(|w| w == b"\x89U").unwrap();
    let mut p = p;
    p[at] = 0x88; // NEWTRUE: is_fortran
    let a = parse(&p).unwrap();
    assert_eq!(&a.u8_array("data").unwrap().data[..], &[0, 1, 2, 3, 4, 5]);
    assert_eq!(fortran_to_c(&[2, 2, 2], &[0, 4, 2, 6, 1, 5, 3, 7]), vec![0, 1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn integers_of_every_width_and_sign() {
    let p = P::new(2).op(b"}(").str8(b"v").op(b"(K\xffM\xff\xff").int(-2);
    let p = p.op(b"\x8a\x00\x8a\x01\xff\x8a\x02\xff\x7f\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x8b\x01\x00\x00\x00\x80I42\nlu").stop();
    assert_eq!(parse(&p).unwrap().ints("v").unwrap(), vec![255, 65535, -2, 0, -1, 32767, i64::MAX, -128, 42]);
    assert!(parse_err(&P::new(2).op(b"\x8a\x09").op(&[0; 9]).stop()).contains("more than 64 bits"));
}

#[test]
fn a_foreign_global_is_refused_before_anything_else() {
    let err = parse_err(&P::new(2).global("os", "system").str8(b"echo hi").op(b"\x85R").stop());
    assert_eq!(
        err,
        "x.pkl: pickle byte 2: global `os.system` refused: only numpy's array and dtype reconstructors, _codecs.encode and bytes may be named (nothing is ever called)"
    );
    let err = parse_err(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.");
    assert!(err.contains("global `builtins.eval` refused"), "{err}");
}

#[test]
fn allowed_names_are_only_callable_as_numpy_does() {
    let err = parse_err(&P::new(2).global("numpy", "ndarray").op(b")R").stop());
    assert!(err.contains("numpy.ndarray called through REDUCE"), "{err}");
    let err = parse_err(&P::new(2).global("numpy", "dtype").str8(b"O8").op(b"\x85R").stop());
    assert!(err.contains("unsupported numpy dtype `O8`"), "{err}");
    let err = parse_err(&P::new(2).op(b"}").op(b"N").op(b"(K\x01tb").stop());
    assert!(err.contains("BUILD on a None"), "{err}");
}

#[test]
fn unknown_opcodes_lengths_past_the_end_and_missing_memo_are_errors() {
    assert!(parse_err(b"\x80\x02N0.").contains("unsupported pickle opcode 0x30"));
    assert!(parse_err(b"\x80\x06N.").contains("pickle protocol 6"));
    let err = parse_err(b"\x80\x02T\xff\xff\xff\x7fabc.");
    assert_eq!(err, "x.pkl: pickle byte 2: truncated pickle: string of 2147483647 bytes runs past the end (4 bytes left)");
    assert!(parse_err(b"\x80\x02T\xff\xff\xff\xff.").contains("negative length -1"));
    let huge = [&b"\x80\x05\x96"[..], &u64::MAX.to_le_bytes()].concat();
    assert!(parse_err(&huge).contains("runs past the end"));
    assert!(parse_err(b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N.").contains("frame of 255 bytes runs past the end"));
    assert!(parse_err(b"\x80\x02h\x05.").contains("memo entry 5 is read but was never stored"));
    assert!(parse_err(b"\x80\x02N").contains("ends before the STOP opcode"));
    assert!(parse_err(b"\x80\x02.").contains("stack underflow"));
    assert!(parse_err(b"\x80\x02N(\x85.").contains("stack underflow"), "a MARK hides what is below it");
    assert!(parse_err(b"\x80\x02Ne.").contains("no MARK"));
    assert!(parse_err(b"\x80\x02N(Nu.").contains("1 items for a dict"));
    assert!(parse_err(b"\x80\x02NK\x01a.").contains("APPEND(S) on a None"));
    assert!(parse_err(b"\x80\x02cnumpy\ndtype").contains("has no end of line"));
}

#[test]
fn an_array_whose_bytes_do_not_match_its_shape_is_refused() {
    let err = parse_err(&py2_dict("u1", &[1, 2, 3, 4, 5]));
    assert!(err.contains("ndarray data holds 5 bytes but shape [2, 3] of dtype |u1 needs 6 (wrong byte count)"), "{err}");
    let err = parse_err(&py2_dict("u2", &[1, 2, 3, 4, 5, 6]));
    assert!(err.contains("needs 12"), "{err}");
    // a product of dimensions past usize is a mismatch too, not an overflow
    let p = P::new(2).op(b"}(").str8(b"data").array(&[i32::MAX, i32::MAX, i32::MAX], "u1", b"").op(b"u").stop();
    assert!(parse_err(&p).contains("needs more than 2^64"));
}

#[test]
fn a_data_dtype_other_than_uint8_is_refused() {
    let p = parse(&py2_dict("i1", &[1, 2, 3, 4, 5, 6])).unwrap();
    assert_eq!(p.u8_array("data").unwrap_err().to_string(), "x.pkl: `data` has dtype |i1, expected uint8 (u1)");
    let p = parse(&py2_dict("<f4", &[0; 24])).unwrap();
    assert!(p.u8_array("data").unwrap_err().to_string().contains("f4, expected uint8 (u1)"));
}

#[test]
fn typed_accessors_name_the_key_and_what_was_found() {
    let p = parse(b"\x80\x02N.").unwrap();
    assert_eq!(p.ints("labels").unwrap_err().to_string(), "x.pkl: the pickle holds a None, expected a dict with `labels`");
    let p = parse(&py2_dict("u1", &[0; 6])).unwrap();
    assert_eq!(p.ints("fine_labels").unwrap_err().to_string(), "x.pkl: the pickled dict has no `fine_labels`");
    assert_eq!(p.u8_array("labels").unwrap_err().to_string(), "x.pkl: `labels` is a list, expected a numpy array");
    assert_eq!(p.ints("data").unwrap_err().to_string(), "x.pkl: `data` is a ndarray, expected a list");
}

#[test]
fn shared_values_cannot_multiply_memory() {
    // one 200-byte text encoded again and again through the memo: refused once the bytes made
    // pass the input's size
    let mut p = P::new(2).global("_codecs", "encode").op(b"q\x00X\xc8\x00\x00\x00").op(&[b'a'; 200]).op(b"q\x01(");
    for _ in 0..10 {
        p = p.op(b"h\x00h\x01X\x06\x00\x00\x00latin1\x86R");
    }
    let err = parse_err(&p.op(b"l.").0);
    assert!(err.contains("converts more bytes than it holds"), "{err}");
}

#[test]
fn the_memo_shares_containers_and_a_later_setitem_wins() {
    // {'a': [1]}; then 'b' = the memoized list, appended to: 'a' sees [1, 2]; 'k' set twice
    let p = P::new(2).op(b"}q\x00").str8(b"a").op(b"]q\x01K\x01as").str8(b"b").op(b"h\x01K\x02as");
    let p = p.str8(b"k").op(b"Ns").str8(b"k").op(b"h\x01s").stop();
    let p = parse(&p).unwrap();
    assert_eq!(p.ints("a").unwrap(), vec![1, 2]);
    assert_eq!(p.ints("k").unwrap(), vec![1, 2]);
}
