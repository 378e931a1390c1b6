-- Every chargeback_account key (month, account_id, product) is present and unique. Returns duplicated or incomplete keys.
select
    month, account_id, product,
    count(*) as rows_with_key,
from chargeback_account
group by all
having count(*) > 1 or bool_or(month is null or account_id is null or product is null)
