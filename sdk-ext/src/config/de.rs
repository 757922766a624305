//! A `Deserializer` wrapper that keeps the field path of the value being read, so an error names
//! the value that failed (`rules[2].match.prefix`), and that reads a struct only from a JSON
//! object: serde's derived structs also take an array as their fields in order, which Envoy's
//! proto JSON never does.
//!
//! The path lives in one `String` threaded through every wrapper by `&mut`: entering a map value,
//! list item or enum variant appends its segment, a success truncates it again, and an error
//! leaves it in place, so after a failure it names the innermost value that failed.

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use std::fmt::{self, Write as _};

/// Deserializes a `T` from `de`; on error, also the path of the value that failed (`""` for the
/// document itself).
pub(super) fn deserialize<'de, T: de::Deserialize<'de>, D: Deserializer<'de>>(
    de: D,
) -> Result<T, (String, D::Error)> {
    let mut path = String::new();
    let result = T::deserialize(Tracked {
        de,
        path: &mut path,
    });
    result.map_err(|error| (path, error))
}

/// Appends a map key or variant name to a path (`a` + `b` = `a.b`).
fn push_name(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}

/// The wrapped deserializer of one value at `path`.
struct Tracked<'p, D> {
    de: D,
    path: &'p mut String,
}

/// Forwards `deserialize_*` methods, wrapping the visitor so nested values are tracked too.
macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*))*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.de.$method($($arg,)* Wrap { visitor, path: self.path })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Tracked<'_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any() deserialize_bool() deserialize_i8() deserialize_i16() deserialize_i32()
        deserialize_i64() deserialize_i128() deserialize_u8() deserialize_u16() deserialize_u32()
        deserialize_u64() deserialize_u128() deserialize_f32() deserialize_f64()
        deserialize_char() deserialize_str() deserialize_string() deserialize_bytes()
        deserialize_byte_buf() deserialize_option() deserialize_unit()
        deserialize_unit_struct(name: &'static str)
        deserialize_newtype_struct(name: &'static str)
        deserialize_seq() deserialize_tuple(len: usize)
        deserialize_tuple_struct(name: &'static str, len: usize)
        deserialize_map()
        deserialize_enum(name: &'static str, variants: &'static [&'static str])
        deserialize_identifier()
    }

    /// As a map: serde_json's struct path would read an array as the fields in order.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.de.deserialize_map(Wrap {
            visitor,
            path: self.path,
        })
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.de.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

/// A visitor whose nested maps, lists, options and enums are read through [`Tracked`].
struct Wrap<'p, V> {
    visitor: V,
    path: &'p mut String,
}

/// Forwards `visit_*` methods that carry a plain value.
macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.visitor.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(formatter)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_some(Tracked {
            de,
            path: self.path,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_newtype_struct(Tracked {
            de,
            path: self.path,
        })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_seq(Seq {
            inner: seq,
            path: self.path,
            index: 0,
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(Map {
            inner: map,
            len: self.path.len(),
            path: self.path,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_enum(Enum {
            inner: data,
            path: self.path,
        })
    }
}

/// A seed whose deserializer is wrapped in [`Tracked`]; a list item's index is its path segment.
struct Seed<'p, S> {
    seed: S,
    path: &'p mut String,
    index: Option<usize>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
        let len = self.path.len();
        if let Some(index) = self.index {
            let _ = write!(self.path, "[{index}]");
        }
        let value = self.seed.deserialize(Tracked {
            de,
            path: &mut *self.path,
        })?;
        self.path.truncate(len);
        Ok(value)
    }
}

/// A list's items, each at its index.
struct Seq<'p, A> {
    inner: A,
    path: &'p mut String,
    index: usize,
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Seq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let index = self.index;
        self.index = self.index.saturating_add(1);
        self.inner.next_element_seed(Seed {
            seed,
            path: &mut *self.path,
            index: Some(index),
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// An object's entries, each value at its key. The key is read as text first so the path can
/// name it, then handed to the caller's seed (a struct's field name, a map's key).
struct Map<'p, A> {
    inner: A,
    path: &'p mut String,
    /// The length of the object's own path, which each entry's key extends.
    len: usize,
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Map<'_, A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let Some(key) = self.inner.next_key::<String>()? else {
            return Ok(None);
        };
        // The key stays on the path until its value is read: an unknown field fails here.
        self.path.truncate(self.len);
        push_name(self.path, &key);
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let value = self.inner.next_value_seed(Seed {
            seed,
            path: &mut *self.path,
            index: None,
        })?;
        self.path.truncate(self.len);
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// An enum; its variant's content is at the variant's name. An unknown variant fails at the
/// enum's own path, as an unknown field fails at the field's.
struct Enum<'p, A> {
    inner: A,
    path: &'p mut String,
}

impl<'de, 'p, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Enum<'p, A> {
    type Error = A::Error;
    type Variant = Variant<'p, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let (name, variant) = self
            .inner
            .variant_seed(std::marker::PhantomData::<String>)?;
        let value = seed.deserialize(name.as_str().into_deserializer())?;
        let len = self.path.len();
        push_name(self.path, &name);
        Ok((
            value,
            Variant {
                inner: variant,
                path: self.path,
                len,
            },
        ))
    }
}

/// An enum variant's content; a struct variant, like a struct, must be an object.
struct Variant<'p, A> {
    inner: A,
    path: &'p mut String,
    /// The length of the enum's path, restored once the content is read.
    len: usize,
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Variant<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()?;
        self.path.truncate(self.len);
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        let value = self.inner.newtype_variant_seed(Seed {
            seed,
            path: &mut *self.path,
            index: None,
        })?;
        self.path.truncate(self.len);
        Ok(value)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let value = self.inner.tuple_variant(
            len,
            Wrap {
                visitor,
                path: &mut *self.path,
            },
        )?;
        self.path.truncate(self.len);
        Ok(value)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let value = self.inner.struct_variant(
            fields,
            ObjectOnly(Wrap {
                visitor,
                path: &mut *self.path,
            }),
        )?;
        self.path.truncate(self.len);
        Ok(value)
    }
}

/// A visitor that takes only a map: the variant's deserializer is the inner one, whose struct
/// path would read an array, so the array is refused here instead.
struct ObjectOnly<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for ObjectOnly<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(formatter)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(map)
    }
}
