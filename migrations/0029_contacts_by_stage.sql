-- Live contacts of one lifecycle stage in creation order: `GET /api/v1/contacts?lifecycle_stage=
-- customer` in its default order, and a search group such as "customers with the tag vip". Without
-- it such a page walks every contact in `created_at` order and reads each from the table to test
-- its stage (57,000 rows read for 8,811 customers before 51 had the tag: 28 ms on a million
-- contacts); with it the walk reads the stage's entries only, from the index alone (8.7 ms).
create index contacts_live_stage_created on contacts (tenant_id, lifecycle_stage, created_at, id)
    where deleted_at is null;
