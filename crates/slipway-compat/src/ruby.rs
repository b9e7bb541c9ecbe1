//! What the rules need from a Ruby file, read with tree-sitter-ruby: calls with their
//! arguments, `def perform` signatures, session and cookie accesses, `ignored_columns`, and the
//! names a file mentions (for "does BASE still use it").

use tree_sitter::{Node, Parser};

/// One argument of a call, as far as the rules care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// `:email`
    Symbol(String),
    /// `"email"` (its text when it has no interpolation).
    Str(String),
    /// `null: false` → (`null`, `false`), the value as written.
    Pair(String, String),
    /// Anything else, as written.
    Other(String),
}

impl Arg {
    /// The name a symbol or string argument gives.
    pub fn name(&self) -> Option<&str> {
        match self {
            Arg::Symbol(name) | Arg::Str(name) => Some(name),
            _ => None,
        }
    }
}

/// A method call (`remove_column :users, :email`, `FooJob.perform_later(1)`).
#[derive(Clone, Debug)]
pub struct Call {
    /// The receiver as written (`FooJob`, `FooJob.set(wait: 1)`, `t`).
    pub receiver: Option<String>,
    /// When the receiver is itself a call (`FooJob.set(…)`), that call's receiver.
    pub receiver_root: Option<String>,
    pub method: String,
    pub args: Vec<Arg>,
    /// 1-based.
    pub line: usize,
    /// The receiver-less calls this call's block contains (`t.remove :x` in `change_table`).
    pub block_calls: Vec<Call>,
}

impl Call {
    pub fn pair(&self, key: &str) -> Option<&str> {
        self.args.iter().find_map(|arg| match arg {
            Arg::Pair(k, v) if k == key => Some(v.as_str()),
            _ => None,
        })
    }

    pub fn names(&self) -> Vec<&str> {
        self.args.iter().filter_map(Arg::name).collect()
    }
}

/// One parameter of a method definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Required(String),
    Optional(String, String),
    Keyword(String, Option<String>),
    /// `*args`
    Splat,
    /// `**options`
    DoubleSplat,
    /// `&block`
    Block,
}

/// `def NAME(params)` inside `class CLASS`.
#[derive(Clone, Debug)]
pub struct MethodDef {
    pub class: Option<String>,
    pub name: String,
    pub params: Vec<Param>,
    pub line: usize,
}

/// `session[:key]`, `cookies.signed[:key]`.
#[derive(Clone, Debug)]
pub struct StoreAccess {
    /// `session` or `cookies`.
    pub store: &'static str,
    pub key: String,
    /// Assigned to (`session[:k] = …`); otherwise read (or deleted).
    pub write: bool,
    /// Read as `new || old` with another read of the same store.
    pub fallback: bool,
    pub line: usize,
}

/// `self.ignored_columns = %w[…]` in `class CLASS`.
#[derive(Clone, Debug)]
pub struct IgnoredColumns {
    pub class: String,
    pub columns: Vec<String>,
}

/// A name the file mentions: an identifier, constant, symbol, hash key or word of a string.
#[derive(Clone, Debug)]
pub struct Mention {
    pub name: String,
    pub line: usize,
}

/// Everything read from one file.
#[derive(Clone, Debug, Default)]
pub struct RubyFile {
    pub calls: Vec<Call>,
    pub methods: Vec<MethodDef>,
    pub classes: Vec<(String, usize)>,
    pub stores: Vec<StoreAccess>,
    pub ignored: Vec<IgnoredColumns>,
    /// `self.table_name = "…"` by class.
    pub table_names: Vec<(String, String)>,
    pub mentions: Vec<Mention>,
    /// Heredoc bodies (`<<~SQL … SQL`): the 1-based line of the `<<~` that opens each, and its
    /// text without the closing marker.
    pub heredocs: Vec<(usize, String)>,
}

impl RubyFile {
    /// The body of the first heredoc opened on `line`.
    pub fn heredoc_on(&self, line: usize) -> Option<&str> {
        self.heredocs
            .iter()
            .find(|(opened, _)| *opened == line)
            .map(|(_, text)| text.as_str())
    }
}

pub fn parse(text: &str) -> RubyFile {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_ruby::LANGUAGE.into())
        .expect("the bundled Ruby grammar matches tree-sitter");
    let mut file = RubyFile::default();
    let Some(tree) = parser.parse(text, None) else {
        return file;
    };
    let mut walker = Walker {
        text,
        file: &mut file,
        class: Vec::new(),
    };
    walker.visit(tree.root_node());
    file
}

struct Walker<'a> {
    text: &'a str,
    file: &'a mut RubyFile,
    class: Vec<String>,
}

fn line(node: Node<'_>) -> usize {
    node.start_position().row + 1
}

impl Walker<'_> {
    fn text(&self, node: Node<'_>) -> &str {
        node.utf8_text(self.text.as_bytes()).unwrap_or("")
    }

    fn visit(&mut self, node: Node<'_>) {
        let mut pushed = false;
        match node.kind() {
            "class" | "module" => {
                if let Some(name) = node.child_by_field_name("name") {
                    let name = self.text(name).to_owned();
                    let short = name.rsplit("::").next().unwrap_or(&name).to_owned();
                    self.file.classes.push((short.clone(), line(node)));
                    self.class.push(short);
                    pushed = true;
                }
            }
            "method" => self.method(node),
            "call" => {
                if let Some(call) = self.call(node) {
                    self.file.calls.push(call);
                }
            }
            "element_reference" => self.store_access(node),
            "heredoc_body" => {
                let text = self.text(node);
                // The body starts at the end of the line that opens it; the last line is the
                // closing marker.
                let body = text.strip_prefix('\n').unwrap_or(text);
                let body = body.rsplit_once('\n').map_or("", |(body, _)| body);
                self.file.heredocs.push((line(node), body.to_owned()));
            }
            "assignment" | "operator_assignment" => self.ignored_columns(node),
            "identifier" | "constant" => {
                let name = self.text(node).to_owned();
                self.mention(name, node);
            }
            "simple_symbol" | "hash_key_symbol" | "bare_symbol" => {
                let name = self.text(node).trim_start_matches(':').to_owned();
                self.mention(name, node);
            }
            "string_content" => {
                let words: Vec<String> = self
                    .text(node)
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '/'))
                    .filter(|word| !word.is_empty())
                    .map(str::to_owned)
                    .collect();
                for word in words {
                    // A path like `/users/new` is also a mention of the path itself.
                    for part in word.split('/').filter(|part| !part.is_empty()) {
                        self.mention(part.to_owned(), node);
                    }
                    if word.contains('/') {
                        self.mention(word, node);
                    }
                }
            }
            _ => {}
        }
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            self.visit(child);
        }
        if pushed {
            self.class.pop();
        }
    }

    fn mention(&mut self, name: String, node: Node<'_>) {
        let name = name
            .trim_end_matches(['=', '?', '!'])
            .trim_matches('"')
            .to_owned();
        if !name.is_empty() {
            self.file.mentions.push(Mention {
                name,
                line: line(node),
            });
        }
    }

    fn arg(&self, node: Node<'_>) -> Option<Arg> {
        Some(match node.kind() {
            "simple_symbol" => Arg::Symbol(self.text(node).trim_start_matches(':').to_owned()),
            "string" | "delimited_symbol" => {
                let plain = node.named_child_count() <= 1
                    && node
                        .named_child(0)
                        .is_none_or(|child| child.kind() == "string_content");
                let content = node.named_child(0).map(|c| self.text(c)).unwrap_or("");
                if plain {
                    if node.kind() == "string" {
                        Arg::Str(content.to_owned())
                    } else {
                        Arg::Symbol(content.to_owned())
                    }
                } else {
                    Arg::Other(self.text(node).to_owned())
                }
            }
            "pair" => {
                let key = node.child_by_field_name("key")?;
                let value = node.child_by_field_name("value")?;
                let key = self
                    .text(key)
                    .trim_start_matches(':')
                    .trim_end_matches(':')
                    .trim_matches('"')
                    .to_owned();
                Arg::Pair(key, self.text(value).to_owned())
            }
            "comment" => return None,
            _ => Arg::Other(self.text(node).to_owned()),
        })
    }

    fn args(&self, list: Option<Node<'_>>) -> Vec<Arg> {
        let Some(list) = list else {
            return Vec::new();
        };
        let mut args = Vec::new();
        let mut cursor = list.walk();
        for child in list.named_children(&mut cursor) {
            if child.kind() == "hash" {
                // `foo(a, { null: false })`
                let mut inner = child.walk();
                args.extend(
                    child
                        .named_children(&mut inner)
                        .filter_map(|pair| self.arg(pair)),
                );
            } else if let Some(arg) = self.arg(child) {
                args.push(arg);
            }
        }
        args
    }

    fn call(&self, node: Node<'_>) -> Option<Call> {
        let method = self.text(node.child_by_field_name("method")?).to_owned();
        let receiver = node.child_by_field_name("receiver");
        let receiver_root = receiver
            .filter(|r| r.kind() == "call")
            .and_then(|r| r.child_by_field_name("receiver"))
            .map(|r| self.text(r).to_owned());
        let mut block_calls = Vec::new();
        if let Some(block) = node.child_by_field_name("block") {
            self.collect_block_calls(block, &mut block_calls);
        }
        Some(Call {
            receiver: receiver.map(|r| self.text(r).to_owned()),
            receiver_root,
            method,
            args: self.args(node.child_by_field_name("arguments")),
            line: line(node),
            block_calls,
        })
    }

    fn collect_block_calls(&self, node: Node<'_>, into: &mut Vec<Call>) {
        let mut cursor = node.walk();
        for child in node.named_children(&mut cursor) {
            if child.kind() == "call" {
                if let Some(call) = self.call(child) {
                    into.push(call);
                }
            } else if child.kind() != "do_block" && child.kind() != "block" {
                self.collect_block_calls(child, into);
            }
        }
    }

    fn method(&mut self, node: Node<'_>) {
        let Some(name) = node.child_by_field_name("name") else {
            return;
        };
        let mut params = Vec::new();
        if let Some(list) = node.child_by_field_name("parameters") {
            let mut cursor = list.walk();
            for param in list.named_children(&mut cursor) {
                let name_of = |p: Node<'_>| {
                    p.child_by_field_name("name")
                        .map(|n| self.text(n).to_owned())
                        .unwrap_or_default()
                };
                let value_of = |p: Node<'_>| {
                    p.child_by_field_name("value")
                        .map(|n| self.text(n).to_owned())
                };
                params.push(match param.kind() {
                    "identifier" => Param::Required(self.text(param).to_owned()),
                    "optional_parameter" => {
                        Param::Optional(name_of(param), value_of(param).unwrap_or_default())
                    }
                    "keyword_parameter" => Param::Keyword(name_of(param), value_of(param)),
                    "splat_parameter" => Param::Splat,
                    "hash_splat_parameter" => Param::DoubleSplat,
                    "block_parameter" => Param::Block,
                    _ => continue,
                });
            }
        }
        self.file.methods.push(MethodDef {
            class: self.class.last().cloned(),
            name: self.text(name).to_owned(),
            params,
            line: line(node),
        });
    }

    fn store_access(&mut self, node: Node<'_>) {
        let Some(object) = node.child_by_field_name("object") else {
            return;
        };
        let object_text = self.text(object);
        let store = match object_text {
            "session" => "session",
            "cookies"
            | "cookies.signed"
            | "cookies.encrypted"
            | "cookies.permanent"
            | "cookies.permanent.signed"
            | "cookies.permanent.encrypted" => "cookies",
            _ => return,
        };
        let Some(key) = node.named_child(1).and_then(|index| self.arg(index)) else {
            return;
        };
        let Some(key) = key.name().map(str::to_owned) else {
            return;
        };
        let parent = node.parent();
        let write = parent.is_some_and(|p| {
            matches!(p.kind(), "assignment" | "operator_assignment")
                && p.child_by_field_name("left") == Some(node)
        });
        let fallback = parent.is_some_and(|p| {
            p.kind() == "binary"
                && p.child_by_field_name("operator")
                    .is_some_and(|op| matches!(self.text(op), "||" | "or"))
                && p.child_by_field_name("left") == Some(node)
        });
        self.file.stores.push(StoreAccess {
            store,
            key,
            write,
            fallback,
            line: line(node),
        });
    }

    fn ignored_columns(&mut self, node: Node<'_>) {
        let (Some(left), Some(right)) = (
            node.child_by_field_name("left"),
            node.child_by_field_name("right"),
        ) else {
            return;
        };
        let target = self.text(left);
        let Some(class) = self.class.last().cloned() else {
            return;
        };
        if target == "self.table_name" {
            let name = self.text(right).trim_matches(['"', '\'', ':']).to_owned();
            self.file.table_names.push((class, name));
            return;
        }
        if target != "self.ignored_columns" {
            return;
        }
        let mut columns = Vec::new();
        let mut stack = vec![right];
        while let Some(node) = stack.pop() {
            if node.kind() == "string_content" {
                columns.push(self.text(node).to_owned());
            } else if matches!(node.kind(), "simple_symbol" | "bare_symbol") {
                columns.push(self.text(node).trim_start_matches(':').to_owned());
            } else {
                let mut cursor = node.walk();
                stack.extend(node.named_children(&mut cursor));
            }
        }
        self.file.ignored.push(IgnoredColumns { class, columns });
    }
}

/// `users` → `User`, `order_items` → `OrderItem`: the model Rails looks for by default.
pub fn model_for_table(table: &str) -> String {
    let singular = if let Some(stem) = table.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = table
        .strip_suffix("ses")
        .or_else(|| table.strip_suffix("xes"))
        .or_else(|| table.strip_suffix("ches"))
        .or_else(|| table.strip_suffix("shes"))
    {
        format!("{stem}{}", &table[stem.len()..table.len() - 2])
    } else {
        table.strip_suffix('s').unwrap_or(table).to_owned()
    };
    camelize(&singular)
}

/// `foo_bar` → `FooBar`.
pub fn camelize(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}
