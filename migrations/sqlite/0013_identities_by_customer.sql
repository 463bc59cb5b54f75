-- Identity resolution asks, for each customer a batch reaches, whether it holds an email or
-- a platform id and how many identities it has. With the kind in the index those answers
-- come from the index alone, without reading each identity's row (issue 5: 1,000,000
-- interactions resolved in under 60 s).
CREATE INDEX identities_customer_kind ON identities (customer_id, kind);
DROP INDEX identities_customer;
