//! Schema changes, read from SQL (with sqlparser's PostgreSQL dialect) or from the Rails
//! migration DSL (with tree-sitter-ruby); `execute "…"` in a Rails migration is read as SQL.

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnOption, ObjectName, ObjectType,
    RenameTableNameKind, Statement,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::ruby::{Arg, Call, RubyFile};

/// One change of the schema that matters in the 50/50 state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    DropColumn {
        table: String,
        column: String,
    },
    DropTable {
        table: String,
    },
    RenameColumn {
        table: String,
        from: String,
        to: String,
    },
    RenameTable {
        from: String,
        to: String,
    },
    AddNotNullWithoutDefault {
        table: String,
        column: String,
    },
    ChangeType {
        table: String,
        column: String,
    },
    IndexNotConcurrent {
        table: String,
    },
    /// A new table: later changes to it in the same range reach no row the old version wrote.
    CreateTable {
        table: String,
    },
}

/// Where a change was written: Ruby DSL or SQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Rails,
    Sql,
}

/// A change and the 1-based line it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub change: Change,
    pub line: usize,
    pub dialect: Dialect,
}

fn last_part(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.clone())
        .unwrap_or_else(|| name.to_string())
}

/// The changes in `sql`, lines counted from `first_line`. SQL that does not parse yields an
/// error message instead (the caller reports it rather than guessing).
pub fn from_sql(sql: &str, first_line: usize) -> Result<Vec<Located>, String> {
    let dialect = PostgreSqlDialect {};
    let statements = Parser::parse_sql(&dialect, sql).map_err(|error| error.to_string())?;
    let starts = statement_lines(sql);
    let mut found = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        let line = first_line + starts.get(index).copied().unwrap_or(1) - 1;
        for change in changes_of(statement) {
            found.push(Located {
                change,
                line,
                dialect: Dialect::Sql,
            });
        }
    }
    Ok(found)
}

/// The line each statement starts on: the first token after each `;`.
fn statement_lines(sql: &str) -> Vec<usize> {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut expecting = true;
    for token in tokens {
        match token.token {
            Token::Whitespace(_) => {}
            Token::SemiColon => expecting = true,
            _ if expecting => {
                lines.push(token.span.start.line as usize);
                expecting = false;
            }
            _ => {}
        }
    }
    lines
}

fn changes_of(statement: &Statement) -> Vec<Change> {
    let mut changes = Vec::new();
    match statement {
        Statement::AlterTable {
            name, operations, ..
        } => {
            let table = last_part(name);
            for operation in operations {
                match operation {
                    AlterTableOperation::DropColumn { column_names, .. } => {
                        changes.extend(column_names.iter().map(|column| Change::DropColumn {
                            table: table.clone(),
                            column: column.value.clone(),
                        }));
                    }
                    AlterTableOperation::RenameColumn {
                        old_column_name,
                        new_column_name,
                    } => changes.push(Change::RenameColumn {
                        table: table.clone(),
                        from: old_column_name.value.clone(),
                        to: new_column_name.value.clone(),
                    }),
                    AlterTableOperation::RenameTable { table_name } => {
                        let to = match table_name {
                            RenameTableNameKind::As(name) | RenameTableNameKind::To(name) => {
                                last_part(name)
                            }
                        };
                        changes.push(Change::RenameTable {
                            from: table.clone(),
                            to,
                        });
                    }
                    AlterTableOperation::AddColumn { column_def, .. } => {
                        let options: Vec<&ColumnOption> =
                            column_def.options.iter().map(|o| &o.option).collect();
                        let not_null = options.iter().any(|o| matches!(o, ColumnOption::NotNull));
                        let default = options
                            .iter()
                            .any(|o| matches!(o, ColumnOption::Default(_)));
                        if not_null && !default {
                            changes.push(Change::AddNotNullWithoutDefault {
                                table: table.clone(),
                                column: column_def.name.value.clone(),
                            });
                        }
                    }
                    AlterTableOperation::AlterColumn { column_name, op } => match op {
                        AlterColumnOperation::SetDataType { .. } => {
                            changes.push(Change::ChangeType {
                                table: table.clone(),
                                column: column_name.value.clone(),
                            });
                        }
                        AlterColumnOperation::SetNotNull => {
                            changes.push(Change::AddNotNullWithoutDefault {
                                table: table.clone(),
                                column: column_name.value.clone(),
                            });
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => changes.extend(names.iter().map(|name| Change::DropTable {
            table: last_part(name),
        })),
        Statement::CreateTable(create) => changes.push(Change::CreateTable {
            table: last_part(&create.name),
        }),
        Statement::CreateIndex(index) if !index.concurrently => {
            changes.push(Change::IndexNotConcurrent {
                table: last_part(&index.table_name),
            });
        }
        _ => {}
    }
    changes
}

/// The changes of a Rails migration file. `errors` receives SQL of `execute` that does not parse.
pub fn from_rails(file: &RubyFile, errors: &mut Vec<(usize, String)>) -> Vec<Located> {
    let mut found = Vec::new();
    for call in file.calls.iter().filter(|call| call.receiver.is_none()) {
        let names = call.names();
        let at = |change| Located {
            change,
            line: call.line,
            dialect: Dialect::Rails,
        };
        match (call.method.as_str(), names.as_slice()) {
            ("remove_column", [table, column, ..]) => found.push(at(Change::DropColumn {
                table: (*table).to_owned(),
                column: (*column).to_owned(),
            })),
            ("remove_columns", [table, columns @ ..]) => {
                found.extend(columns.iter().map(|column| {
                    at(Change::DropColumn {
                        table: (*table).to_owned(),
                        column: (*column).to_owned(),
                    })
                }));
            }
            ("drop_table", [table, ..]) => found.push(at(Change::DropTable {
                table: (*table).to_owned(),
            })),
            ("rename_column", [table, from, to, ..]) => found.push(at(Change::RenameColumn {
                table: (*table).to_owned(),
                from: (*from).to_owned(),
                to: (*to).to_owned(),
            })),
            ("rename_table", [from, to, ..]) => found.push(at(Change::RenameTable {
                from: (*from).to_owned(),
                to: (*to).to_owned(),
            })),
            ("add_column", [table, column, ..]) if not_null_without_default(call) => {
                found.push(at(Change::AddNotNullWithoutDefault {
                    table: (*table).to_owned(),
                    column: (*column).to_owned(),
                }));
            }
            ("change_column", [table, column, ..]) => found.push(at(Change::ChangeType {
                table: (*table).to_owned(),
                column: (*column).to_owned(),
            })),
            ("change_column_null", [table, column, ..])
                if matches!(call.args.get(2), Some(Arg::Other(value)) if value == "false")
                    && call.args.get(3).is_none() =>
            {
                found.push(at(Change::AddNotNullWithoutDefault {
                    table: (*table).to_owned(),
                    column: (*column).to_owned(),
                }));
            }
            ("add_index", [table, ..]) if !concurrent(call) => {
                found.push(at(Change::IndexNotConcurrent {
                    table: (*table).to_owned(),
                }));
            }
            ("create_table", [table, ..]) => found.push(at(Change::CreateTable {
                table: (*table).to_owned(),
            })),
            ("change_table", [table, ..]) => {
                found.extend(change_table(table, call).into_iter().map(at));
            }
            ("execute", _) => {
                let sql = match call.args.first() {
                    Some(Arg::Str(sql)) => Some((sql.as_str(), call.line)),
                    Some(Arg::Other(text)) if text.starts_with("<<") => {
                        file.heredoc_on(call.line).map(|body| (body, call.line + 1))
                    }
                    _ => None,
                };
                if let Some((sql, line)) = sql {
                    match from_sql(sql, line) {
                        Ok(changes) => found.extend(changes),
                        Err(error) => errors.push((call.line, error)),
                    }
                }
            }
            _ => {}
        }
    }
    found
}

fn not_null_without_default(call: &Call) -> bool {
    call.pair("null") == Some("false") && call.pair("default").is_none()
}

fn concurrent(call: &Call) -> bool {
    call.pair("algorithm")
        .is_some_and(|value| value.trim_matches([':', '"', '\'']) == "concurrently")
}

/// `change_table :users do |t| t.remove :email; t.rename :a, :b; … end`.
fn change_table(table: &str, call: &Call) -> Vec<Change> {
    let mut changes = Vec::new();
    for inner in &call.block_calls {
        let names = inner.names();
        match (inner.method.as_str(), names.as_slice()) {
            ("remove", columns) => {
                changes.extend(columns.iter().map(|column| Change::DropColumn {
                    table: table.to_owned(),
                    column: (*column).to_owned(),
                }))
            }
            ("rename", [from, to, ..]) => changes.push(Change::RenameColumn {
                table: table.to_owned(),
                from: (*from).to_owned(),
                to: (*to).to_owned(),
            }),
            ("change", [column, ..]) => changes.push(Change::ChangeType {
                table: table.to_owned(),
                column: (*column).to_owned(),
            }),
            (_, [column, ..])
                if inner.receiver.is_some()
                    && inner.method != "index"
                    && not_null_without_default(inner) =>
            {
                changes.push(Change::AddNotNullWithoutDefault {
                    table: table.to_owned(),
                    column: (*column).to_owned(),
                });
            }
            _ => {}
        }
    }
    changes
}
