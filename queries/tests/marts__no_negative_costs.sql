-- No mart carries a negative cost (beyond a rounding hair). Returns the offending rows, named by mart.
select 'chargeback_namespace' as mart, namespace as item, total_cost_usd as cost_usd from chargeback_namespace
where total_cost_usd < -0.005 or direct_cost_usd < -0.005 or shared_cost_usd < -0.005
union all
select 'chargeback_account', product, actual_cost_usd from chargeback_account
where actual_cost_usd < -0.005 or on_demand_cost_usd < -0.005
union all
select 'savings_realized', resource_id, actual_cost_usd from savings_realized
where actual_cost_usd < -0.005 or on_demand_cost_usd < -0.005
union all
select 'savings_potential', resource_name, monthly_savings_usd from savings_potential
where monthly_savings_usd < -0.005
union all
select 'rightsizing', container_name, monthly_savings_usd from rightsizing
where monthly_savings_usd < -0.005
