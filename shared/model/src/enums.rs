//! Closed sets of string values (protocols, modes, kinds) that still decode when a document
//! carries an unknown value, so validation can report it next to every other violation instead
//! of aborting the parse at the first bad enum.

/// Declares a string enum with its known spellings plus `Unset` (absent) and `Unknown(text)`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// The field is absent from the document.
            #[default]
            Unset,
            /// A value outside the known set, kept verbatim for validation to report.
            Unknown(String),
        }

        impl $name {
            /// The spellings a document may use, in documentation order.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unset => "",
                    Self::Unknown(text) => text,
                }
            }

            pub fn is_unset(&self) -> bool {
                matches!(self, Self::Unset)
            }

            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unset | Self::Unknown(_))
            }

            pub fn parse(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    "" => Self::Unset,
                    other => Self::Unknown(other.to_string()),
                }
            }
        }

        impl crate::enums::StringEnum for $name {
            const KNOWN: &'static [&'static str] = &[$($text),+];

            fn as_str(&self) -> &str {
                $name::as_str(self)
            }

            fn is_unset(&self) -> bool {
                $name::is_unset(self)
            }

            fn is_known(&self) -> bool {
                $name::is_known(self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Ok(Self::parse(&text))
            }
        }

        #[cfg(any(test, feature = "arbitrary"))]
        impl proptest::arbitrary::Arbitrary for $name {
            type Parameters = ();
            type Strategy = proptest::strategy::BoxedStrategy<Self>;

            fn arbitrary_with(_: ()) -> Self::Strategy {
                use proptest::prelude::*;
                let known: Vec<Self> = vec![$(Self::$variant),+];
                prop_oneof![
                    6 => proptest::sample::select(known),
                    1 => Just(Self::Unset),
                    1 => "[A-Za-z][A-Za-z0-9]{0,8}"
                        .prop_filter("not a known value", |s| !Self::KNOWN.contains(&s.as_str()))
                        .prop_map(Self::Unknown),
                ]
                .boxed()
            }
        }
    };
}

pub(crate) use string_enum;

/// What validation needs to know about any string enum.
pub trait StringEnum {
    const KNOWN: &'static [&'static str];
    fn as_str(&self) -> &str;
    fn is_unset(&self) -> bool;
    fn is_known(&self) -> bool;
}
