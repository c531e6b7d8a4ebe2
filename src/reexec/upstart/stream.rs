//! Importing a payload as it is parsed.
//!
//! Each job class — nearly all of a payload — is imported as soon as it
//! has been read, and dropped: the import overlaps the reading (a re-exec
//! reads from a pipe its writer is still filling), and the whole payload
//! is never held as one tree. That needs the events and the configuration
//! sources first, which outset's own payloads (members sorted by name)
//! have before `job_classes`; classes that come before them (Upstart
//! writes `conf_sources` last) are kept and imported at the end.

use super::super::tree::{KeySeed, Map, Scratch, TreeSeed, Value};
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

use super::{Conf, ImportError, Imported, Importer, Obj};
use crate::job::Slot;

/// Called with each class imported: its object in the payload, its index
/// in `job_classes`, and the classes restored so far (by name).
pub(in crate::reexec) type ClassHook<'h> = &'h mut dyn FnMut(
    &Value,
    usize,
    &mut std::collections::BTreeMap<crate::job::ClassName, Slot>,
) -> Result<(), ImportError>;

/// A payload imported, and its top level without `job_classes` (for
/// whatever else a reader wants from it).
pub(in crate::reexec) struct Streamed {
    pub imported: Imported,
    pub rest: Map,
}

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON, or the reading failed (see `serde_json::Error::is_io`).
    #[error("state data is not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error(transparent)]
    Import(#[from] ImportError),
}

impl From<ReadError> for ImportError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Json(e) => ImportError::Json(e.to_string()),
            ReadError::Import(e) => e,
        }
    }
}

/// Read and import one payload from `de`, which must hold nothing else.
pub(in crate::reexec) fn import_from<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    now_ms: Option<u64>,
    hook: ClassHook<'_>,
) -> Result<Streamed, ReadError> {
    let mut state = State {
        imp: Some(Importer::new(now_ms)),
        rest: Map::new(),
        conf: None,
        kept: Vec::new(),
        classes_seen: false,
        error: None,
        hook,
        scratch: Scratch::default(),
    };
    let parsed = TopLevel(&mut state)
        .deserialize(&mut *de)
        .and_then(|()| de.end());
    // An import error stops the parsing: it is the one to report.
    if let Some(e) = state.error.take() {
        return Err(ReadError::Import(e));
    }
    parsed.map_err(ReadError::Json)?;
    state.finish().map_err(ReadError::Import)
}

struct State<'h> {
    /// Taken by `finish`.
    imp: Option<Importer>,
    /// The top level's other members, as they came.
    rest: Map,
    /// Once the classes can be imported.
    conf: Option<Conf>,
    /// Classes read before what they need.
    kept: Vec<Value>,
    /// `job_classes` came.
    classes_seen: bool,
    error: Option<ImportError>,
    hook: ClassHook<'h>,
    /// Shared by the classes as they are read.
    scratch: Scratch,
}

impl State<'_> {
    /// Import class `c`, or keep it if the events or sources are still to
    /// come.
    fn class(&mut self, mut c: Value) -> Result<(), ImportError> {
        let ready = self.conf.is_some()
            || (self.rest.contains_key("events") && self.rest.contains_key("conf_sources"));
        if !ready {
            self.kept.push(c);
            return Ok(());
        }
        let Some(imp) = self.imp.as_mut() else {
            return Ok(());
        };
        let conf = match self.conf.take() {
            Some(conf) => conf,
            None => imp.prepare(&Obj::top(&self.rest))?,
        };
        // Classes are either all kept or none.
        let index = imp.summary.job_classes;
        let done = imp.class_at(&mut c, index, &conf);
        self.conf = Some(conf);
        done?;
        // `c` is freed on return, before the next class is read, which
        // then reuses its memory (a new image's heap is fresh, and every
        // page it first touches costs a fault).
        (self.hook)(&c, index, &mut imp.slots)
    }

    fn finish(mut self) -> Result<Streamed, ImportError> {
        let Some(mut imp) = self.imp.take() else {
            return Err(super::bad(&"state", "read twice"));
        };
        if !self.classes_seen {
            return Err(ImportError::MissingKey {
                at: "state".into(),
                key: "job_classes".into(),
            });
        }
        let top = Obj::top(&self.rest);
        let conf = match self.conf.take() {
            Some(conf) => conf,
            None => imp.prepare(&top)?,
        };
        for (i, c) in self.kept.iter_mut().enumerate() {
            imp.class_at(c, i, &conf)?;
            (self.hook)(c, i, &mut imp.slots)?;
        }
        let imported = imp.finish(&top, conf)?;
        Ok(Streamed {
            imported,
            rest: self.rest,
        })
    }
}

/// A member of the wrong type: the import error to report, and an error
/// that stops the parsing.
fn wrong_type<E: serde::de::Error>(
    state: &mut State<'_>,
    at: &str,
    expected: &'static str,
    found: &'static str,
) -> Result<(), E> {
    state.error = Some(ImportError::WrongType {
        at: at.into(),
        expected,
        found,
    });
    Err(E::custom("wrong type"))
}

/// A visitor's methods for every scalar, each a wrong type (`self.wrong`).
macro_rules! scalars_are_wrong {
    () => {
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
            self.wrong("string")
        }

        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
            self.wrong("boolean")
        }

        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
            self.wrong("number")
        }

        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
            self.wrong("number")
        }

        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
            self.wrong("number")
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
            self.wrong("null")
        }
    };
}

/// The top level: every member as a value, but `job_classes`.
struct TopLevel<'s, 'h>(&'s mut State<'h>);

impl<'de> DeserializeSeed<'de> for TopLevel<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl TopLevel<'_, '_> {
    /// The payload is not an object at all.
    fn wrong<E: serde::de::Error>(self, found: &'static str) -> Result<(), E> {
        wrong_type(self.0, "state", "object", found)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a state object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if key == "job_classes" {
                map.next_value_seed(Classes(state))?;
            } else {
                let value: Value = map.next_value()?;
                state.rest.insert(key, value);
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.wrong("array")
    }

    scalars_are_wrong!();
}

/// `job_classes`, imported entry by entry.
struct Classes<'s, 'h>(&'s mut State<'h>);

impl<'de> DeserializeSeed<'de> for Classes<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Classes<'_, '_> {
    fn wrong<E: serde::de::Error>(self, found: &'static str) -> Result<(), E> {
        wrong_type(self.0, "job_classes", "array", found)
    }
}

impl<'de> Visitor<'de> for Classes<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("job_classes as an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.0;
        if state.classes_seen {
            state.error = Some(super::bad(&"job_classes", "given twice"));
            return Err(A::Error::custom("job_classes given twice"));
        }
        state.classes_seen = true;
        while let Some(c) = seq.next_element_seed(TreeSeed(&mut state.scratch))? {
            if let Err(e) = state.class(c) {
                state.error = Some(e);
                return Err(A::Error::custom("import failed"));
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.wrong("object")
    }

    scalars_are_wrong!();
}
