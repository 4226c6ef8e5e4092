//! A bounded, safe reader of Python pickles that hold numpy arrays, lists, dicts and strings
//! (torchvision's CIFAR files: Python 2 cPickle at protocol 2, or re-saved at protocols 2-5).
//!
//! It only builds values and never runs anything: a GLOBAL other than numpy's array and dtype
//! reconstructors, `_codecs.encode` and `bytes` is an error, as is any opcode outside the binary
//! protocols' data opcodes. Every length is checked against the input left before anything is
//! allocated, and conversions (`_codecs.encode`) may not produce more bytes than the input holds,
//! so the memory used is linear in the input. Python 2 `str` is read as latin-1 text where text is
//! wanted and as bytes where bytes are (what `pickle.load(f, encoding="latin1")` and numpy do).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{DataError, Result};

mod ops;

type Id = usize;

/// The few callables a pickle may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callable {
    /// `numpy.core.multiarray._reconstruct` (or `numpy._core...`): an empty array, filled by BUILD.
    Reconstruct,
    /// `numpy.core.numeric._frombuffer` (protocol 5): an array from (buffer, dtype, shape, order).
    FromBuffer,
    /// `numpy.dtype`.
    Dtype,
    /// `numpy.ndarray`: only as `_reconstruct`'s argument or NEWOBJ's class.
    Ndarray,
    /// `_codecs.encode(str, "latin1")`: bytes, as Python 3 writes them at protocol 2.
    Encode,
    /// `bytes()`: empty bytes at protocol 2.
    Bytes,
}

impl Callable {
    fn lookup(module: &str, name: &str) -> Option<Self> {
        Some(match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => Callable::Reconstruct,
            ("numpy.core.numeric" | "numpy._core.numeric", "_frombuffer") => Callable::FromBuffer,
            ("numpy", "dtype") => Callable::Dtype,
            ("numpy", "ndarray") => Callable::Ndarray,
            ("_codecs", "encode") => Callable::Encode,
            ("__builtin__" | "builtins", "bytes") => Callable::Bytes,
            _ => return None,
        })
    }
}

/// A numpy dtype of one fixed-size scalar kind (`u1`, `<i8`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dtype {
    /// `b` bool, `i` signed, `u` unsigned, `f` float, `c` complex.
    kind: char,
    itemsize: usize,
    /// `<`, `>`, `|` or `=`.
    order: char,
}

impl Dtype {
    fn parse(descr: &str) -> Option<Self> {
        let mut chars = descr.chars();
        let mut kind = chars.next()?;
        let mut order = '|';
        if "<>|=".contains(kind) {
            order = kind;
            kind = chars.next()?;
        }
        let itemsize: usize = chars.as_str().parse().ok()?;
        ("biufc".contains(kind) && (1..=16).contains(&itemsize)).then_some(Self { kind, itemsize, order })
    }

    fn name(&self) -> String {
        format!("{}{}{}", self.order, self.kind, self.itemsize)
    }
}

/// An array under construction (`_reconstruct` before BUILD) or complete.
#[derive(Debug, Clone)]
struct Array {
    shape: Vec<usize>,
    dtype: Option<Dtype>,
    fortran: bool,
    data: Option<Arc<[u8]>>,
}

#[derive(Debug)]
enum Node {
    None,
    Bool(bool),
    Int(i64),
    /// A float (no reader needs its value).
    Float,
    /// Unicode text.
    Text(Arc<str>),
    /// A Python 2 `str`: latin-1 text or raw bytes, as the reader needs.
    Str8(Arc<[u8]>),
    Bytes(Arc<[u8]>),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Global(Callable),
    Dtype(Dtype),
    Array(Array),
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Node::None => "None",
            Node::Bool(_) => "bool",
            Node::Int(_) => "int",
            Node::Float => "float",
            Node::Text(_) | Node::Str8(_) => "str",
            Node::Bytes(_) => "bytes",
            Node::List(_) => "list",
            Node::Tuple(_) => "tuple",
            Node::Dict(_) => "dict",
            Node::Global(_) => "global",
            Node::Dtype(_) => "dtype",
            Node::Array(_) => "ndarray",
        }
    }
}

/// A uint8 array in C (row-major) order.
#[derive(Debug)]
pub struct U8Array<'a> {
    pub shape: Vec<usize>,
    pub data: Cow<'a, [u8]>,
}

/// A loaded pickle: the values it built and its top-level value.
#[derive(Debug)]
pub struct Pickle {
    nodes: Vec<Node>,
    root: Id,
    path: PathBuf,
}

/// Reads and parses the pickle at `path`.
pub fn load(path: &Path) -> Result<Pickle> {
    Pickle::parse(&super::read_file(path)?, path)
}

impl Pickle {
    /// Parses `bytes`; errors name `path`, the byte offset and the problem.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        ops::Machine::new(bytes, path).run()
    }

    fn err(&self, msg: impl Into<String>) -> DataError {
        DataError::format(&self.path, msg.into())
    }

    /// The kind of the top-level value (`dict`, `list`, ...).
    pub fn root_kind(&self) -> &'static str {
        self.nodes[self.root].kind()
    }

    /// Whether the top-level value is a dict with text key `key`.
    pub fn has(&self, key: &str) -> bool {
        self.lookup(key).is_some()
    }

    fn lookup(&self, key: &str) -> Option<Id> {
        let Node::Dict(items) = &self.nodes[self.root] else { return None };
        // a later SETITEM overrides an earlier one, as in a Python dict
        items.iter().rev().find(|(k, _)| self.text_eq(*k, key)).map(|&(_, v)| v)
    }

    fn text_eq(&self, id: Id, key: &str) -> bool {
        match &self.nodes[id] {
            Node::Text(t) => &**t == key,
            // latin-1 and UTF-8 agree on ASCII; a non-ASCII key byte never equals a key's UTF-8
            Node::Str8(b) => key.is_ascii() && &**b == key.as_bytes(),
            _ => false,
        }
    }

    fn field(&self, key: &str) -> Result<&Node> {
        match self.lookup(key) {
            Some(id) => Ok(&self.nodes[id]),
            None if !matches!(self.nodes[self.root], Node::Dict(_)) => {
                Err(self.err(format!("the pickle holds a {}, expected a dict with `{key}`", self.root_kind())))
            }
            None => Err(self.err(format!("the pickled dict has no `{key}`"))),
        }
    }

    fn items(&self, key: &str) -> Result<&[Id]> {
        match self.field(key)? {
            Node::List(v) | Node::Tuple(v) => Ok(v),
            other => Err(self.err(format!("`{key}` is a {}, expected a list", other.kind()))),
        }
    }

    /// The list of integers at `key` of the top-level dict.
    pub fn ints(&self, key: &str) -> Result<Vec<i64>> {
        let items = self.items(key)?;
        items
            .iter()
            .enumerate()
            .map(|(i, &id)| match &self.nodes[id] {
                Node::Int(v) => Ok(*v),
                other => Err(self.err(format!("`{key}`[{i}] is a {}, expected an int", other.kind()))),
            })
            .collect()
    }

    /// The list of strings at `key` (Python 2 `str` decoded as latin-1).
    pub fn texts(&self, key: &str) -> Result<Vec<String>> {
        let items = self.items(key)?;
        items
            .iter()
            .enumerate()
            .map(|(i, &id)| match &self.nodes[id] {
                Node::Text(t) => Ok(t.to_string()),
                Node::Str8(b) => Ok(b.iter().map(|&c| c as char).collect()),
                other => Err(self.err(format!("`{key}`[{i}] is a {}, expected a str", other.kind()))),
            })
            .collect()
    }

    /// The uint8 numpy array at `key`, in C order (a Fortran-order array is reordered).
    pub fn u8_array(&self, key: &str) -> Result<U8Array<'_>> {
        let a = match self.field(key)? {
            Node::Array(a) => a,
            other => return Err(self.err(format!("`{key}` is a {}, expected a numpy array", other.kind()))),
        };
        let (Some(dtype), Some(data)) = (&a.dtype, &a.data) else {
            return Err(self.err(format!("`{key}`: numpy array without its state (no BUILD)")));
        };
        if (dtype.kind, dtype.itemsize) != ('u', 1) {
            return Err(self.err(format!("`{key}` has dtype {}, expected uint8 (u1)", dtype.name())));
        }
        let data = if a.fortran && a.shape.len() > 1 { Cow::Owned(fortran_to_c(&a.shape, data)) } else { Cow::Borrowed(&data[..]) };
        Ok(U8Array { shape: a.shape.clone(), data })
    }
}

/// Reorders column-major bytes of `shape` into row-major order.
fn fortran_to_c(shape: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut index = vec![0usize; shape.len()];
    for _ in 0..data.len() {
        // column-major offset of the row-major multi-index
        let (mut offset, mut stride) = (0, 1);
        for (i, n) in index.iter().zip(shape) {
            offset += i * stride;
            stride *= n;
        }
        out.push(data[offset]);
        for (i, n) in index.iter_mut().zip(shape).rev() {
            *i += 1;
            if *i < *n {
                break;
            }
            *i = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests;
