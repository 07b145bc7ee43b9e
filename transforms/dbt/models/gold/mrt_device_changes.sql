{#-
  Sensor, site and insulin changes per subject per period (the periods of mrt_period_summary,
  each ending at the subject's last day with readings) for each change type the subject has ever
  logged, so a period without one shows 0. mean_days_between averages days_since_previous of the
  period's changes: the interval ending with each change, even when the one before it lies
  before the period (the life of the sensor or site that change ended).
-#}

with

changes as (

    select subject_id, change_type, changed_at, local_date, days_since_previous
    from {{ ref('fct_device_changes') }}

),

periods as (

    select s.subject_id, s.period, s.last_day, p.period_days
    from {{ ref('mrt_period_summary') }} as s
    inner join ({{ summary_periods() }}) as p using (period)

),

logged_types as (

    select distinct subject_id, change_type
    from changes

),

in_period as (

    select p.subject_id, p.period, c.change_type, c.changed_at, c.days_since_previous
    from periods as p
    inner join changes as c
        on c.subject_id = p.subject_id
        and (p.period_days is null or c.local_date > p.last_day - p.period_days)

),

aggregated as (

    select
        subject_id,
        period,
        change_type,
        count(*) as changes,
        avg(days_since_previous) as mean_days_between,
        max(changed_at) as last_changed_at

    from in_period
    group by all

),

final as (

    select
        p.subject_id,
        p.period,
        t.change_type,
        coalesce(a.changes, 0)::integer as changes,
        {{ metric('a.mean_days_between') }} as mean_days_between,
        a.last_changed_at

    from periods as p
    inner join logged_types as t using (subject_id)
    left join aggregated as a using (subject_id, period, change_type)

)

select * from final
order by subject_id, period, change_type
