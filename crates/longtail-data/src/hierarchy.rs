//! Two-level class hierarchies (fine -> coarse), as MGKT's multi-granularity loss and the
//! hierarchical metrics (TIE, F_H) need them.
//!
//! File format (TOML, or the same structure in JSON): one `[[group]]` per coarse class, listing
//! its fine classes by name or by index. Every fine class must appear exactly once.
//!
//! ```toml
//! [[group]]
//! name = "footwear"
//! classes = ["Sandal", "Sneaker", "Ankle boot"]
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// A fine -> coarse mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    pub coarse_names: Vec<String>,
    /// `parent[fine] = coarse`.
    pub parent: Vec<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HierarchyFile {
    group: Vec<GroupEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupEntry {
    name: String,
    classes: Vec<ClassRef>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ClassRef {
    Index(usize),
    Name(String),
}

impl Hierarchy {
    /// Builds and validates a hierarchy from its parts.
    pub fn new(coarse_names: Vec<String>, parent: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = parent.iter().find(|&&p| p >= coarse_names.len()) {
            return Err(DataError::invalid("hierarchy", format!("coarse index {bad} but only {} coarse classes", coarse_names.len())));
        }
        Ok(Self { coarse_names, parent })
    }

    pub fn num_coarse(&self) -> usize {
        self.coarse_names.len()
    }

    pub fn num_fine(&self) -> usize {
        self.parent.len()
    }

    /// Reads a hierarchy file (`.toml` or `.json`) against the dataset's fine class names.
    pub fn load(path: &Path, fine_names: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let file: HierarchyFile = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| DataError::format(path, e.to_string()))?
        } else {
            toml::from_str(&text).map_err(|e| DataError::format(path, e.to_string()))?
        };
        let mut parent: Vec<Option<usize>> = vec![None; fine_names.len()];
        let mut coarse_names = Vec::new();
        for (g, group) in file.group.iter().enumerate() {
            coarse_names.push(group.name.clone());
            for class in &group.classes {
                let fine = match class {
                    ClassRef::Index(i) if *i < fine_names.len() => *i,
                    ClassRef::Index(i) => {
                        return Err(DataError::format(path, format!("group `{}`: class index {i} outside 0..{}", group.name, fine_names.len())));
                    }
                    ClassRef::Name(n) => fine_names
                        .iter()
                        .position(|f| f == n)
                        .ok_or_else(|| DataError::format(path, format!("group `{}`: unknown class `{n}` (known: {})", group.name, fine_names.join(", "))))?,
                };
                if let Some(prev) = parent[fine] {
                    return Err(DataError::format(path, format!("class `{}` is in both `{}` and `{}`", fine_names[fine], file.group[prev].name, group.name)));
                }
                parent[fine] = Some(g);
            }
        }
        let missing: Vec<&str> = parent.iter().zip(fine_names).filter(|(p, _)| p.is_none()).map(|(_, n)| n.as_str()).collect();
        if !missing.is_empty() {
            return Err(DataError::format(path, format!("classes without a group: {}", missing.join(", "))));
        }
        Self::new(coarse_names, parent.into_iter().map(|p| p.unwrap()).collect())
    }

    /// Fine classes of each coarse class.
    pub fn children(&self) -> Vec<Vec<usize>> {
        let mut children = vec![Vec::new(); self.num_coarse()];
        for (fine, &coarse) in self.parent.iter().enumerate() {
            children[coarse].push(fine);
        }
        children
    }
}
