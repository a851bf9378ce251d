//! The discovery catalog: resources listed by the payments that settled for them (the
//! `bazaar` extension), one row a resource, the last settlement's terms winning. Kept beside
//! the settlements so that every instance on one PostgreSQL lists the same resources.

use sqlx::Row;

use crate::*;

/// A resource as a settled payment described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Catalog key: the canonical URL (and, for an MCP tool, the tool's name after a newline).
    pub key: String,
    /// Canonical URL of the resource (origin and path, or the route template).
    pub resource: String,
    /// `http` or `mcp`.
    pub kind: String,
    /// Protocol version of the payment that listed it.
    pub x402_version: u8,
    /// The payment requirements it accepts, a JSON array.
    pub accepts: String,
    /// The extension as the payment carried it (`info` and `schema`), JSON.
    pub extension: String,
    /// Human-readable description of the resource.
    pub description: Option<String>,
    /// MIME type of the resource's answer.
    pub mime_type: Option<String>,
    /// CAIP-2 network of the accepted payment (a filter).
    pub network: String,
    /// Scheme of the accepted payment (a filter).
    pub scheme: String,
    /// Recipient of the accepted payment (a filter).
    pub pay_to: String,
    /// Digest of the settlement that listed it last.
    pub digest: String,
}

/// A catalog row and when it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// What was listed.
    pub listing: Listing,
    /// Unix milliseconds of the first listing.
    pub created_at: i64,
    /// Unix milliseconds of the last settlement that listed it.
    pub updated_at: i64,
}

/// Which rows a listing page holds; `None` matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingFilter {
    /// `http` or `mcp`.
    pub kind: Option<String>,
    /// CAIP-2 network.
    pub network: Option<String>,
    /// Scheme.
    pub scheme: Option<String>,
    /// Recipient; a `0x` address matches whatever its letter case.
    pub pay_to: Option<String>,
}

const LISTING_COLUMNS: &str = "resource_key, resource, kind, x402_version, accepts, extension, description, mime_type, network, scheme, pay_to, digest, created_at, updated_at";

impl ListingFilter {
    /// The `WHERE` clause and the values it binds, in order.
    fn clause(&self) -> (String, Vec<&str>) {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        let exact = [
            ("kind", &self.kind),
            ("network", &self.network),
            ("scheme", &self.scheme),
        ];
        for (column, value) in exact {
            if let Some(value) = value {
                values.push(value.as_str());
                conditions.push(format!("{column} = ${}", values.len()));
            }
        }
        if let Some(pay_to) = &self.pay_to {
            values.push(pay_to.as_str());
            conditions.push(if pay_to.starts_with("0x") {
                format!("LOWER(pay_to) = LOWER(${})", values.len())
            } else {
                format!("pay_to = ${}", values.len())
            });
        }
        if conditions.is_empty() {
            return (String::new(), values);
        }
        (format!("WHERE {}", conditions.join(" AND ")), values)
    }
}

impl Ledger {
    /// Lists a resource, or brings its row up to date (the last settlement wins).
    pub async fn list_resource(&self, listing: &Listing) -> Result<(), LedgerError> {
        let now = now_millis();
        sqlx::query(&format!(
            "INSERT INTO x402_discovery ({LISTING_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
             ON CONFLICT (resource_key) DO UPDATE SET
                resource = excluded.resource, kind = excluded.kind,
                x402_version = excluded.x402_version, accepts = excluded.accepts,
                extension = excluded.extension, description = excluded.description,
                mime_type = excluded.mime_type, network = excluded.network,
                scheme = excluded.scheme, pay_to = excluded.pay_to,
                digest = excluded.digest, updated_at = excluded.updated_at"
        ))
        .bind(&listing.key)
        .bind(&listing.resource)
        .bind(&listing.kind)
        .bind(i64::from(listing.x402_version))
        .bind(&listing.accepts)
        .bind(&listing.extension)
        .bind(listing.description.as_deref())
        .bind(listing.mime_type.as_deref())
        .bind(&listing.network)
        .bind(&listing.scheme)
        .bind(&listing.pay_to)
        .bind(&listing.digest)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// One page of the catalog, most recently settled first, and how many rows match.
    pub async fn listings(
        &self,
        filter: &ListingFilter,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<Listed>, u64), LedgerError> {
        let (clause, values) = filter.clause();
        let count_sql = format!("SELECT COUNT(*) AS n FROM x402_discovery {clause}");
        let mut count = sqlx::query(&count_sql);
        for value in &values {
            count = count.bind(*value);
        }
        let total: i64 = count
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?
            .try_get("n")
            .map_err(unavailable)?;
        let page_sql = format!(
            "SELECT {LISTING_COLUMNS} FROM x402_discovery {clause}
             ORDER BY updated_at DESC, resource_key LIMIT ${} OFFSET ${}",
            values.len() + 1,
            values.len() + 2
        );
        let mut page = sqlx::query(&page_sql);
        for value in &values {
            page = page.bind(*value);
        }
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = page
            .bind(i64::from(limit))
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let listed = rows
            .iter()
            .map(|r| listed_from_row(r).map_err(unavailable))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((listed, total.max(0) as u64))
    }
}

fn listed_from_row(row: &AnyRow) -> Result<Listed, sqlx::Error> {
    let version: i64 = row.try_get("x402_version")?;
    Ok(Listed {
        listing: Listing {
            key: row.try_get("resource_key")?,
            resource: row.try_get("resource")?,
            kind: row.try_get("kind")?,
            x402_version: u8::try_from(version).unwrap_or(0),
            accepts: row.try_get("accepts")?,
            extension: row.try_get("extension")?,
            description: row.try_get("description")?,
            mime_type: row.try_get("mime_type")?,
            network: row.try_get("network")?,
            scheme: row.try_get("scheme")?,
            pay_to: row.try_get("pay_to")?,
            digest: row.try_get("digest")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
