//! `#[derive(FromJson)]`: see the README. The generated code is a match over an object's keys,
//! calling `sdk_ext::config::json`'s helpers, which are not generic over anything but the value
//! type read.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Attribute, Data, DeriveInput, Error, ExprPath, Fields, LitStr, Result};

#[proc_macro_derive(FromJson, attributes(serde))]
pub fn derive_from_json(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// `#[serde(...)]` on the struct or enum.
#[derive(Default)]
struct ContainerAttrs {
    snake_case: bool,
    deny_unknown_fields: bool,
}

/// `#[serde(...)]` on a field or variant.
#[derive(Default)]
struct MemberAttrs {
    rename: Option<String>,
    default: Option<FieldDefault>,
    deserialize_with: Option<ExprPath>,
}

enum FieldDefault {
    Trait,
    Function(ExprPath),
}

fn container_attrs(attrs: &[Attribute]) -> Result<ContainerAttrs> {
    let mut parsed = ContainerAttrs::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("deny_unknown_fields") {
                parsed.deny_unknown_fields = true;
            } else if meta.path.is_ident("rename_all") {
                let rule: LitStr = meta.value()?.parse()?;
                if rule.value() != "snake_case" {
                    return Err(meta.error("FromJson supports rename_all = \"snake_case\" only"));
                }
                parsed.snake_case = true;
            } else {
                return Err(meta.error("not supported by FromJson"));
            }
            Ok(())
        })?;
    }
    Ok(parsed)
}

fn member_attrs(attrs: &[Attribute]) -> Result<MemberAttrs> {
    let mut parsed = MemberAttrs::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                parsed.rename = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("default") {
                parsed.default = Some(if meta.input.peek(syn::Token![=]) {
                    FieldDefault::Function(meta.value()?.parse::<LitStr>()?.parse()?)
                } else {
                    FieldDefault::Trait
                });
            } else if meta.path.is_ident("deserialize_with") {
                parsed.deserialize_with = Some(meta.value()?.parse::<LitStr>()?.parse()?);
            } else {
                return Err(meta.error("not supported by FromJson"));
            }
            Ok(())
        })?;
    }
    Ok(parsed)
}

/// `RemoteAddress` → `remote_address`.
fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (index, c) in name.char_indices() {
        if c.is_uppercase() && index > 0 {
            snake.push('_');
        }
        snake.extend(c.to_lowercase());
    }
    snake
}

fn json_name(ident: &syn::Ident, attrs: &MemberAttrs, snake: bool) -> String {
    let name = ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    match &attrs.rename {
        Some(rename) => rename.clone(),
        None if snake => snake_case(name),
        None => name.to_string(),
    }
}

fn expand(input: &DeriveInput) -> Result<TokenStream> {
    if !input.generics.params.is_empty() {
        return Err(Error::new_spanned(
            &input.generics,
            "FromJson does not support generic types",
        ));
    }
    let name = &input.ident;
    let container = container_attrs(&input.attrs)?;
    let body = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(_) | Fields::Unit => {
                let expected = format!("struct {name}");
                let read = read_fields(quote!(#name), &data.fields, &container)?;
                quote! {
                    let mut object = json::Object::new(value, path, #expected)?;
                    #read
                }
            }
            Fields::Unnamed(fields) if fields.unnamed.len() == 1 => {
                quote!(json::FromJson::from_json(value, path).map(#name))
            }
            Fields::Unnamed(_) => {
                return Err(Error::new_spanned(
                    input,
                    "FromJson supports tuple structs of one field only",
                ))
            }
        },
        Data::Enum(data) => {
            let expected = format!("enum {name}");
            let mut names = Vec::new();
            let mut arms = Vec::new();
            for variant in &data.variants {
                let attrs = member_attrs(&variant.attrs)?;
                let json = json_name(&variant.ident, &attrs, container.snake_case);
                let ident = &variant.ident;
                let arm = match &variant.fields {
                    Fields::Unit => quote! {{
                        json::unit_variant(content, &name, path)?;
                        #name::#ident
                    }},
                    Fields::Unnamed(fields) if fields.unnamed.len() == 1 => quote! {
                        #name::#ident(json::newtype_variant(content, &name, path)?)
                    },
                    Fields::Named(_) => {
                        let expected = format!("struct variant {name}::{ident}");
                        let read = read_fields(quote!(#name::#ident), &variant.fields, &container)?;
                        quote! {{
                            let mut object = json::Object::variant(content, &name, path, #expected)?;
                            #read?
                        }}
                    }
                    Fields::Unnamed(_) => {
                        return Err(Error::new_spanned(
                            variant,
                            "FromJson supports variants of at most one unnamed field",
                        ))
                    }
                };
                arms.push(quote!(#json => #arm,));
                names.push(json);
            }
            quote! {
                const VARIANTS: &[&str] = &[#(#names),*];
                let (name, content) = json::variant(value, #expected)?;
                let len = path.len();
                let read = match name.as_str() {
                    #(#arms)*
                    _ => return Err(json::unknown_variant(&name, VARIANTS)),
                };
                path.truncate(len);
                Ok(read)
            }
        }
        Data::Union(_) => {
            return Err(Error::new_spanned(
                input,
                "FromJson does not support unions",
            ))
        }
    };
    Ok(quote! {
        impl ::sdk_ext::config::json::FromJson for #name {
            fn from_json(
                value: ::sdk_ext::config::json::Json,
                path: &mut ::std::string::String,
            ) -> ::core::result::Result<Self, ::std::string::String> {
                use ::sdk_ext::config::json;
                #body
            }
        }
    })
}

/// Reads the fields of `object` (a `json::Object` in scope) and builds `constructor { .. }`; the
/// expression is a `Result`.
fn read_fields(
    constructor: TokenStream,
    fields: &Fields,
    container: &ContainerAttrs,
) -> Result<TokenStream> {
    let mut names = Vec::new();
    let mut slots = Vec::new();
    let mut arms = Vec::new();
    let mut builds = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        let Some(ident) = &field.ident else {
            return Err(Error::new_spanned(field, "expected a named field"));
        };
        let attrs = member_attrs(&field.attrs)?;
        let json = json_name(ident, &attrs, container.snake_case);
        let slot = format_ident!("field_{}", index);
        let ty = &field.ty;
        let read = match &attrs.deserialize_with {
            Some(function) => quote!(object.read_with(value, #function)),
            None => quote!(object.read(value)),
        };
        // A field with a default starts as its default, which a read replaces; one without is
        // an `Option` until the end, where a missing value fails (or is `None` for an `Option`).
        let default = match &attrs.default {
            Some(FieldDefault::Trait) => Some(quote!(::core::default::Default::default())),
            Some(FieldDefault::Function(function)) => Some(quote!(#function())),
            None => None,
        };
        if let Some(default) = default {
            slots.push(quote!(let mut #slot: #ty = #default;));
            arms.push(quote!(#json => #read.map(|read| #slot = read),));
            builds.push(quote!(#ident: #slot,));
        } else {
            slots.push(
                quote!(let mut #slot: ::core::option::Option<#ty> = ::core::option::Option::None;),
            );
            arms.push(
                quote!(#json => #read.map(|read| #slot = ::core::option::Option::Some(read)),),
            );
            builds.push(quote! {
                #ident: match #slot {
                    ::core::option::Option::Some(value) => value,
                    ::core::option::Option::None => <#ty as json::FromJson>::missing(#json)?,
                },
            });
        }
        names.push(json);
    }
    let unknown = if container.deny_unknown_fields {
        quote!(Err(json::unknown_field(&key, FIELDS)))
    } else {
        quote!({
            drop(value);
            Ok(())
        })
    };
    Ok(quote! {
        (|| -> ::core::result::Result<_, ::std::string::String> {
            const FIELDS: &[&str] = &[#(#names),*];
            #(#slots)*
            while let ::core::option::Option::Some((key, value)) = object.next_entry() {
                let read: ::core::result::Result<(), ::std::string::String> = match key.as_str() {
                    #(#arms)*
                    _ => #unknown,
                };
                read?;
            }
            Ok(#constructor { #(#builds)* })
        })()
    })
}
