//! The pickle machine: one opcode at a time onto a value stack, as CPython's `Unpickler`, with
//! values kept in an arena (`Node`s addressed by index) so that the memo shares them.

use super::*;

const MARK: u8 = b'(';
const STOP: u8 = b'.';
const INT: u8 = b'I';
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const NONE: u8 = b'N';
const REDUCE: u8 = b'R';
const BINSTRING: u8 = b'T';
const SHORT_BINSTRING: u8 = b'U';
const BINUNICODE: u8 = b'X';
const APPEND: u8 = b'a';
const BUILD: u8 = b'b';
const GLOBAL: u8 = b'c';
const DICT: u8 = b'd';
const EMPTY_DICT: u8 = b'}';
const APPENDS: u8 = b'e';
const GET: u8 = b'g';
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';
const LIST: u8 = b'l';
const EMPTY_LIST: u8 = b']';
const PUT: u8 = b'p';
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const SETITEM: u8 = b's';
const TUPLE: u8 = b't';
const EMPTY_TUPLE: u8 = b')';
const SETITEMS: u8 = b'u';
const BINFLOAT: u8 = b'G';
const BINBYTES: u8 = b'B';
const SHORT_BINBYTES: u8 = b'C';
const PROTO: u8 = 0x80;
const NEWOBJ: u8 = 0x81;
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const LONG1: u8 = 0x8a;
const LONG4: u8 = 0x8b;
const SHORT_BINUNICODE: u8 = 0x8c;
const BINUNICODE8: u8 = 0x8d;
const BINBYTES8: u8 = 0x8e;
const STACK_GLOBAL: u8 = 0x93;
const MEMOIZE: u8 = 0x94;
const FRAME: u8 = 0x95;
const BYTEARRAY8: u8 = 0x96;

/// numpy's limit on dimensions is 64; CIFAR needs 2.
const MAX_DIMS: usize = 32;

pub(super) struct Machine<'a> {
    input: &'a [u8],
    path: &'a Path,
    pos: usize,
    /// Offset of the opcode being run, for messages.
    at: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    /// Stack lengths at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
    /// Bytes made by conversions (`_codecs.encode`, text array data), at most the input's size.
    made: usize,
}

impl<'a> Machine<'a> {
    pub(super) fn new(input: &'a [u8], path: &'a Path) -> Self {
        Self { input, path, pos: 0, at: 0, nodes: Vec::new(), stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), made: 0 }
    }

    fn err(&self, msg: impl std::fmt::Display) -> DataError {
        DataError::format(self.path, format!("pickle byte {}: {msg}", self.at))
    }

    /// The next `n` bytes, refused (before any allocation) when the input has fewer left.
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let left = self.input.len() - self.pos;
        if n > left as u64 {
            return Err(self.err(format!("truncated pickle: {what} of {n} bytes runs past the end ({left} bytes left)")));
        }
        let input: &'a [u8] = self.input;
        let out = &input[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        Ok(self.take(N as u64, what)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self, what: &str) -> Result<u64> {
        Ok(self.array::<1>(what)?[0] as u64)
    }

    fn u32(&mut self, what: &str) -> Result<u64> {
        Ok(u32::from_le_bytes(self.array(what)?) as u64)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn i32_len(&mut self, what: &str) -> Result<u64> {
        let n = i32::from_le_bytes(self.array(what)?);
        u64::try_from(n).map_err(|_| self.err(format!("negative length {n} of {what}")))
    }

    /// A text argument ended by a newline (GLOBAL, PUT, GET, INT).
    fn line(&mut self, what: &str) -> Result<&'a str> {
        let rest = &self.input[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.err(format!("truncated pickle: {what} has no end of line")));
        };
        let line = self.take(n as u64 + 1, what)?;
        std::str::from_utf8(&line[..n]).map_err(|_| self.err(format!("{what} is not UTF-8")))
    }

    fn decimal(&mut self, what: &str) -> Result<u64> {
        let line = self.line(what)?;
        line.trim().parse().map_err(|_| self.err(format!("{what} `{line}` is not a number")))
    }

    fn push(&mut self, node: Node) {
        self.nodes.push(node);
        self.stack.push(self.nodes.len() - 1);
    }

    fn base(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn top(&self) -> Result<Id> {
        match self.stack.len() > self.base() {
            true => Ok(*self.stack.last().expect("non-empty")),
            false => Err(self.err("stack underflow (the opcode needs a value that is not there)")),
        }
    }

    fn pop(&mut self) -> Result<Id> {
        let id = self.top()?;
        self.stack.pop();
        Ok(id)
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>> {
        let Some(mark) = self.marks.pop() else { return Err(self.err("no MARK before the opcode that needs one")) };
        Ok(self.stack.split_off(mark))
    }

    fn pairs(&self, items: Vec<Id>) -> Result<Vec<(Id, Id)>> {
        if !items.len().is_multiple_of(2) {
            return Err(self.err(format!("{} items for a dict (keys and values must pair up)", items.len())));
        }
        Ok(items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect())
    }

    fn charge(&mut self, bytes: usize) -> Result<()> {
        self.made += bytes;
        if self.made > self.input.len() {
            return Err(self.err("the pickle converts more bytes than it holds (a shared value converted again and again)"));
        }
        Ok(())
    }

    /// Runs the opcodes up to STOP.
    pub(super) fn run(mut self) -> Result<Pickle> {
        loop {
            self.at = self.pos;
            if self.pos == self.input.len() {
                return Err(self.err("truncated pickle: the input ends before the STOP opcode"));
            }
            let op = self.u8("opcode")? as u8;
            if op == STOP {
                let root = self.pop()?;
                return Ok(Pickle { nodes: self.nodes, root, path: self.path.to_path_buf() });
            }
            self.step(op)?;
        }
    }

    fn step(&mut self, op: u8) -> Result<()> {
        match op {
            PROTO => {
                let v = self.u8("protocol")?;
                if v > 5 {
                    return Err(self.err(format!("pickle protocol {v} (this reader knows 2 to 5)")));
                }
            }
            FRAME => {
                let n = self.u64("frame length")?;
                let left = (self.input.len() - self.pos) as u64;
                if n > left {
                    return Err(self.err(format!("truncated pickle: frame of {n} bytes runs past the end ({left} bytes left)")));
                }
            }
            MARK => self.marks.push(self.stack.len()),
            EMPTY_DICT => self.push(Node::Dict(Vec::new())),
            EMPTY_LIST => self.push(Node::List(Vec::new())),
            EMPTY_TUPLE => self.push(Node::Tuple(Vec::new())),
            DICT => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.push(Node::Dict(pairs));
            }
            LIST => {
                let items = self.pop_mark()?;
                self.push(Node::List(items));
            }
            TUPLE => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items));
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let n = (op - TUPLE1 + 1) as usize;
                if self.stack.len() < self.base() + n {
                    return Err(self.err(format!("stack underflow (TUPLE{n} needs {n} values)")));
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push(Node::Tuple(items));
            }
            SETITEM => {
                let (v, k) = (self.pop()?, self.pop()?);
                self.extend_dict(vec![(k, v)])?;
            }
            SETITEMS => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.extend_dict(pairs)?;
            }
            APPEND => {
                let v = self.pop()?;
                self.extend_list(vec![v])?;
            }
            APPENDS => {
                let items = self.pop_mark()?;
                self.extend_list(items)?;
            }
            BININT => {
                let v = i32::from_le_bytes(self.array("BININT")?);
                self.push(Node::Int(v as i64));
            }
            BININT1 => {
                let v = self.u8("BININT1")?;
                self.push(Node::Int(v as i64));
            }
            BININT2 => {
                let v = u16::from_le_bytes(self.array("BININT2")?);
                self.push(Node::Int(v as i64));
            }
            LONG1 | LONG4 => {
                let n = if op == LONG1 { self.u8("LONG1 length")? } else { self.i32_len("LONG4")? };
                if n > 8 {
                    return Err(self.err(format!("integer of {n} bytes (more than 64 bits)")));
                }
                let bytes = self.take(n, "long integer")?;
                self.push(Node::Int(le_signed(bytes)));
            }
            INT => {
                let node = match self.line("INT")? {
                    "00" => Node::Bool(false),
                    "01" => Node::Bool(true),
                    text => Node::Int(text.trim().parse().map_err(|_| self.err(format!("INT `{text}` is not a 64-bit integer")))?),
                };
                self.push(node);
            }
            NONE => self.push(Node::None),
            NEWTRUE => self.push(Node::Bool(true)),
            NEWFALSE => self.push(Node::Bool(false)),
            BINFLOAT => {
                self.take(8, "BINFLOAT")?;
                self.push(Node::Float);
            }
            SHORT_BINSTRING | BINSTRING => {
                let n = if op == SHORT_BINSTRING { self.u8("SHORT_BINSTRING length")? } else { self.i32_len("BINSTRING")? };
                let bytes = self.take(n, "string")?;
                self.push(Node::Str8(bytes.into()));
            }
            SHORT_BINUNICODE | BINUNICODE | BINUNICODE8 => {
                let n = match op {
                    SHORT_BINUNICODE => self.u8("SHORT_BINUNICODE length")?,
                    BINUNICODE => self.u32("BINUNICODE length")?,
                    _ => self.u64("BINUNICODE8 length")?,
                };
                let bytes = self.take(n, "unicode string")?;
                let text = std::str::from_utf8(bytes).map_err(|_| self.err("unicode string is not valid UTF-8"))?;
                self.push(Node::Text(text.into()));
            }
            SHORT_BINBYTES | BINBYTES | BINBYTES8 | BYTEARRAY8 => {
                let n = match op {
                    SHORT_BINBYTES => self.u8("SHORT_BINBYTES length")?,
                    BINBYTES => self.u32("BINBYTES length")?,
                    _ => self.u64("bytes length")?,
                };
                let bytes = self.take(n, "bytes")?;
                self.push(Node::Bytes(bytes.into()));
            }
            PUT | BINPUT | LONG_BINPUT | MEMOIZE => {
                let index = match op {
                    PUT => self.decimal("PUT index")?,
                    BINPUT => self.u8("BINPUT index")?,
                    LONG_BINPUT => self.u32("LONG_BINPUT index")?,
                    _ => self.memo.len() as u64,
                };
                let top = self.top()?;
                self.memo.insert(index, top);
            }
            GET | BINGET | LONG_BINGET => {
                let index = match op {
                    GET => self.decimal("GET index")?,
                    BINGET => self.u8("BINGET index")?,
                    _ => self.u32("LONG_BINGET index")?,
                };
                let Some(&id) = self.memo.get(&index) else {
                    return Err(self.err(format!("memo entry {index} is read but was never stored")));
                };
                self.stack.push(id);
            }
            GLOBAL => {
                let module = self.line("GLOBAL module")?;
                let name = self.line("GLOBAL name")?;
                let callable = self.allow(module, name)?;
                self.push(Node::Global(callable));
            }
            STACK_GLOBAL => {
                let (name, module) = (self.pop()?, self.pop()?);
                let (Node::Text(name), Node::Text(module)) = (&self.nodes[name], &self.nodes[module]) else {
                    return Err(self.err("STACK_GLOBAL needs two strings (module and name)"));
                };
                let callable = self.allow(module, name)?;
                self.push(Node::Global(callable));
            }
            REDUCE | NEWOBJ => {
                let (args, func) = (self.pop()?, self.pop()?);
                let node = self.call(op, func, args)?;
                self.push(node);
            }
            BUILD => {
                let state = self.pop()?;
                let target = self.top()?;
                self.build(target, state)?;
            }
            other => {
                return Err(
                    self.err(format!("unsupported pickle opcode 0x{other:02x} (this reader takes numpy arrays, lists, dicts and strings of protocols 2 to 5)"))
                );
            }
        }
        Ok(())
    }

    fn allow(&self, module: &str, name: &str) -> Result<Callable> {
        Callable::lookup(module, name).ok_or_else(|| {
            self.err(format!(
                "global `{module}.{name}` refused: only numpy's array and dtype reconstructors, _codecs.encode and bytes may be named (nothing is ever called)"
            ))
        })
    }

    fn extend_dict(&mut self, pairs: Vec<(Id, Id)>) -> Result<()> {
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::Dict(items) => {
                items.extend(pairs);
                Ok(())
            }
            other => {
                let kind = other.kind();
                Err(self.err(format!("SETITEM(S) on a {kind}, expected a dict")))
            }
        }
    }

    fn extend_list(&mut self, values: Vec<Id>) -> Result<()> {
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::List(items) => {
                items.extend(values);
                Ok(())
            }
            other => {
                let kind = other.kind();
                Err(self.err(format!("APPEND(S) on a {kind}, expected a list")))
            }
        }
    }

    /// The value REDUCE (`func(*args)`) or NEWOBJ (`cls.__new__(cls, *args)`) stands for.
    fn call(&mut self, op: u8, func: Id, args: Id) -> Result<Node> {
        let Node::Global(callable) = self.nodes[func] else {
            return Err(self.err(format!("REDUCE/NEWOBJ of a {}, expected a named callable", self.nodes[func].kind())));
        };
        // every allowed callable takes at most 4 arguments: copying them is bounded
        let args = match &self.nodes[args] {
            Node::Tuple(a) if a.len() <= 4 => a.clone(),
            Node::Tuple(a) => return Err(self.err(format!("REDUCE/NEWOBJ of {callable:?} with {} arguments", a.len()))),
            other => return Err(self.err(format!("REDUCE/NEWOBJ arguments are a {}, expected a tuple", other.kind()))),
        };
        let arity = |ok: bool, what: &str| if ok { Ok(()) } else { Err(self.err(format!("{what} with {} arguments", args.len()))) };
        if op == NEWOBJ {
            return match callable {
                Callable::Ndarray => Ok(Node::Array(Array { shape: Vec::new(), dtype: None, fortran: false, data: None })),
                _ => Err(self.err(format!("NEWOBJ of {callable:?}, only numpy.ndarray is allowed"))),
            };
        }
        match callable {
            Callable::Reconstruct => {
                arity(args.len() == 3, "numpy _reconstruct")?;
                match self.nodes[args[0]] {
                    Node::Global(Callable::Ndarray) => Ok(Node::Array(Array { shape: Vec::new(), dtype: None, fortran: false, data: None })),
                    ref other => Err(self.err(format!("numpy _reconstruct of a {}, expected numpy.ndarray", other.kind()))),
                }
            }
            Callable::FromBuffer => {
                arity(args.len() == 4, "numpy _frombuffer")?;
                let fortran = match self.short_text(args[3]).as_deref() {
                    Some("C") => false,
                    Some("F") => true,
                    _ => return Err(self.err("numpy _frombuffer: order is not `C` or `F`")),
                };
                let data = self.buffer(args[0])?;
                let array = self.checked_array(args[2], args[1], fortran, data)?;
                Ok(Node::Array(array))
            }
            Callable::Dtype => {
                arity((1..=3).contains(&args.len()), "numpy.dtype")?;
                let descr = self.short_text(args[0]).ok_or_else(|| self.err("numpy.dtype of a non-string or a long one"))?;
                let dtype = Dtype::parse(&descr).ok_or_else(|| self.err(format!("unsupported numpy dtype `{descr}`")))?;
                Ok(Node::Dtype(dtype))
            }
            Callable::Encode => {
                arity((1..=2).contains(&args.len()), "_codecs.encode")?;
                let encoding = if args.len() == 2 { self.short_text(args[1]).unwrap_or_default().to_ascii_lowercase() } else { "utf-8".into() };
                let latin = match encoding.as_str() {
                    "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" => true,
                    "utf-8" | "utf8" => false,
                    other => return Err(self.err(format!("_codecs.encode to `{other}` (only latin-1 and UTF-8)"))),
                };
                let bytes = match (&self.nodes[args[0]], latin) {
                    (Node::Text(t), true) => latin1(t).ok_or_else(|| self.err("_codecs.encode: text outside latin-1"))?,
                    (Node::Text(t), false) => t.as_bytes().to_vec(),
                    // a Python 2 `str` is latin-1 text: encoding it back gives its bytes
                    (Node::Str8(b), true) => b.to_vec(),
                    (Node::Str8(b), false) => b.iter().map(|&c| c as char).collect::<String>().into_bytes(),
                    (other, _) => return Err(self.err(format!("_codecs.encode of a {}, expected a str", other.kind()))),
                };
                self.charge(bytes.len())?;
                Ok(Node::Bytes(bytes.into()))
            }
            Callable::Bytes => {
                arity(args.is_empty(), "bytes()")?;
                Ok(Node::Bytes(Arc::from(&[][..])))
            }
            Callable::Ndarray => Err(self.err("numpy.ndarray called through REDUCE (only _reconstruct may build arrays)")),
        }
    }

    /// Text of a short str (a Python 2 `str` read as latin-1): a dtype, an encoding, an order.
    /// A longer one is `None`, so that a memoized big string costs nothing to look at.
    fn short_text(&self, id: Id) -> Option<String> {
        match &self.nodes[id] {
            Node::Text(t) if t.len() <= 32 => Some(t.to_string()),
            Node::Str8(b) if b.len() <= 32 => Some(b.iter().map(|&c| c as char).collect()),
            _ => None,
        }
    }

    /// The bytes of an array's data (a text is latin-1 encoded, as numpy does).
    fn buffer(&mut self, id: Id) -> Result<Arc<[u8]>> {
        match &self.nodes[id] {
            Node::Bytes(b) | Node::Str8(b) => Ok(b.clone()),
            Node::Text(t) => {
                let bytes = latin1(t).ok_or_else(|| self.err("array data text outside latin-1"))?;
                self.charge(bytes.len())?;
                Ok(bytes.into())
            }
            Node::List(_) => Err(self.err("array data is a list (object arrays are not supported)")),
            other => Err(self.err(format!("array data is a {}, expected bytes", other.kind()))),
        }
    }

    /// An array of `shape` and `dtype` over `data`, whose length must be shape x itemsize.
    fn checked_array(&self, shape: Id, dtype: Id, fortran: bool, data: Arc<[u8]>) -> Result<Array> {
        let (Node::Tuple(dims) | Node::List(dims)) = &self.nodes[shape] else {
            return Err(self.err(format!("array shape is a {}, expected a tuple", self.nodes[shape].kind())));
        };
        if dims.len() > MAX_DIMS {
            return Err(self.err(format!("array of {} dimensions", dims.len())));
        }
        let shape = dims
            .iter()
            .map(|&d| match self.nodes[d] {
                Node::Int(n) if n >= 0 => Ok(n as usize),
                _ => Err(self.err("array shape holds a value that is not a non-negative int")),
            })
            .collect::<Result<Vec<usize>>>()?;
        let Node::Dtype(dtype) = &self.nodes[dtype] else {
            return Err(self.err(format!("array dtype is a {}, expected numpy.dtype", self.nodes[dtype].kind())));
        };
        let need = shape.iter().try_fold(dtype.itemsize, |acc, &d| acc.checked_mul(d));
        if need != Some(data.len()) {
            let need = need.map_or("more than 2^64".to_string(), |n| n.to_string());
            return Err(self.err(format!(
                "ndarray data holds {} bytes but shape {shape:?} of dtype {} needs {need} (wrong byte count)",
                data.len(),
                dtype.name()
            )));
        }
        Ok(Array { shape, dtype: Some(dtype.clone()), fortran, data: Some(data) })
    }

    /// BUILD: numpy's `__setstate__` of an array or a dtype.
    fn build(&mut self, target: Id, state: Id) -> Result<()> {
        let Node::Tuple(items) = &self.nodes[state] else {
            return Err(self.err(format!("BUILD state is a {}, expected a tuple", self.nodes[state].kind())));
        };
        match &self.nodes[target] {
            Node::Array(_) => {
                // (version, shape, dtype, is_fortran, data), or the same without the version
                let s = match items.len() {
                    5 => &items[1..],
                    4 => &items[..],
                    n => return Err(self.err(format!("ndarray state of {n} items, expected 5"))),
                };
                let (shape, dtype, fortran, data) = (s[0], s[1], s[2], s[3]);
                let fortran = match self.nodes[fortran] {
                    Node::Bool(b) => b,
                    Node::Int(i) => i != 0,
                    _ => return Err(self.err("ndarray state: is_fortran is not a bool")),
                };
                let data = self.buffer(data)?;
                let array = self.checked_array(shape, dtype, fortran, data)?;
                self.nodes[target] = Node::Array(array);
                Ok(())
            }
            Node::Dtype(_) => {
                // (version, byte order, ...): keep the byte order
                let order = items.get(1).and_then(|&o| self.short_text(o)).and_then(|o| o.chars().next()).filter(|o| "<>|=".contains(*o));
                if let (Some(order), Node::Dtype(d)) = (order, &mut self.nodes[target]) {
                    d.order = order;
                }
                Ok(())
            }
            other => Err(self.err(format!("BUILD on a {} (only numpy arrays and dtypes)", other.kind()))),
        }
    }
}

/// A little-endian two's-complement integer of at most 8 bytes (LONG1, LONG4).
fn le_signed(bytes: &[u8]) -> i64 {
    let mut v: u64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        v |= (b as u64) << (8 * i);
    }
    let bits = 8 * bytes.len();
    if bits > 0 && bits < 64 && bytes[bytes.len() - 1] & 0x80 != 0 {
        v |= u64::MAX << bits;
    }
    v as i64
}

/// `text` as latin-1 bytes; `None` when a character is above U+00FF.
fn latin1(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(c as u32).ok()).collect()
}
