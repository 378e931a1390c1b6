-- Every savings_potential key (savings_rank) is present and unique. Returns duplicated or incomplete keys.
select
    savings_rank,
    count(*) as rows_with_key,
from savings_potential
group by all
having count(*) > 1 or bool_or(savings_rank is null)
