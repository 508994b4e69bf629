//! JSON objects read as lists of entries, in the order they were written, with
//! keys borrowed from the text unless they hold escapes. Cleansing and
//! inventory read each record's object once, field by field: building a hash
//! or B-tree map per record cost more than the lookups it saved.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// A JSON object key, borrowed from the text unless it has escapes.
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A JSON object's entries in the order written.
pub struct Entries<'a, V>(pub Vec<(Cow<'a, str>, V)>);

impl<V> Default for Entries<'_, V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<'de, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<'de, V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // Exports have tens of columns: one allocation for most records.
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(48));
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, V>()? {
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(EntriesVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_borrowed_unless_escaped_and_order_is_kept() {
        let text = r#"{"b":"1","a\"q":null,"c":"x\ny"}"#;
        let Entries(entries) = serde_json::from_str::<Entries<Option<String>>>(text).unwrap();
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a\"q", "c"]);
        assert!(matches!(entries[0].0, Cow::Borrowed(_)));
        assert!(matches!(entries[1].0, Cow::Owned(_)));
        assert_eq!(entries[1].1, None);
        assert_eq!(entries[2].1.as_deref(), Some("x\ny"));
    }
}
