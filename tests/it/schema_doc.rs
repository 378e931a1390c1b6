//! SCHEMA.md is generated from the declared schemas; this golden test keeps it true.
//! `UPDATE_EXPECT=1 cargo test --release schema` rewrites it; review the diff.

#[test]
fn schema_md_matches_the_declared_schemas() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("SCHEMA.md");
    let generated = spotcost::extract::schema_markdown();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "SCHEMA.md is out of date: run `UPDATE_EXPECT=1 cargo test --release schema` and review the diff"
    );
}
