{{ config(materialized='incremental', window_before_days=1, window_after_days=1) }}

{#-
  All the insulin: one row per bolus and per basal segment, on the person's local dates.
  The rules (sources: Nightscout's care portal and basal rendering in cgm-remote-monitor,
  Tidepool's data model for basal/bolus, Loop's and AndroidAPS's uploaders), each unit-tested:
    1. Scheduled basal: the profile in force, its basal schedule in local time, wherever no temp
       basal runs and the pump is not suspended.
    2. A temp basal runs from its time for `duration` minutes, clipped at the next temp basal
       (a temp basal of duration 0 cancels the one before) or the next pump suspend.
    3. Its rate: `absolute` (U/h); else `percent`, Nightscout's change from scheduled
       (percent 40 = 140 % of scheduled); else `rate`, in U/h unless it is above any pump's
       maximum (var max_basal_u_per_h), where it can only be AndroidAPS's percentage of
       scheduled (rate 140 = 140 %). An `absolute` above that maximum is flagged and never summed.
    4. Loop's delivered `amount`, where present, is what the temp basal delivered: it replaces
       rate x time, spread evenly over the time the temp basal ran (after clipping; Loop writes
       the programmed `duration` but the `amount` actually delivered).
    5. Suspend Pump until Resume Pump delivers nothing.
    6. Boluses: automatic (SMB: eventType SMB, `automatic: true`, `isSMB: true`, type SMB) or
       manual; above var max_bolus_u they are implausible and left out.
  Basal is counted only between the subject's first and last record in reach of the window, so
  a partial day (today) holds the basal delivered so far, not the whole day's schedule. The days
  either side of the window are rebuilt too: where the day after starts its first segment depends
  on the window's records (a backfill may build a later day before an earlier one), and the day
  before ended its last segment at what was then the subject's last record.
-#}

{%- set max_rate = var('max_basal_u_per_h') %}

with

treatments as (

    select *
    from {{ ref('stg_treatments') }}
    where {{ window_filter('local_date', before_days=3, after_days=2) }}

),

records as (

    select subject_id, local_date, reading_ms as ms from {{ ref('stg_entries') }}
    where {{ window_filter('local_date', before_days=2, after_days=2) }}
    union all
    select subject_id, local_date, treated_ms from treatments
    union all
    select subject_id, local_date, recorded_ms from {{ ref('stg_devicestatus') }}
    where {{ window_filter('local_date', before_days=2, after_days=2) }}

),

reach as (

    select subject_id, min(ms) as first_ms, max(ms) as last_ms
    from records
    group by all

),

days as (

    select distinct subject_id, local_date
    from records
    where {{ window_filter('local_date', before_days=1, after_days=1) }}

),

day_profiles as (

    -- the profile in force on each day (looked up at the day's noon UTC), and the day's zone
    select
        d.subject_id,
        d.local_date,
        p.basal_schedule,
        {{ record_zone('p.timezone') }} as zone,
        epoch_ms(d.local_date::timestamp + interval 12 hour) as noon_ms

    from days as d
    asof left join {{ ref('stg_profile_periods') }} as p
        on p.subject_id = d.subject_id
        and epoch_ms(d.local_date::timestamp + interval 12 hour) >= p.valid_from_ms

),

schedule_entries as (

    select
        subject_id,
        local_date,
        zone,
        unnest(coalesce(
            try(from_json(basal_schedule, '[{"time": "VARCHAR", "value": "VARCHAR", "timeAsSeconds": "VARCHAR"}]')),
            []
        )) as entry

    from day_profiles

),

schedule_points as (

    -- each schedule entry as the instant it starts on that local day
    select
        subject_id,
        local_date,
        zone,
        epoch_ms({{ instant_of_local('local_date::timestamp + to_seconds(start_s)', 'zone') }}) as ms,
        rate_u_per_h

    from (
        select
            subject_id,
            local_date,
            zone,
            coalesce(
                try_cast(entry.timeAsSeconds as double)::bigint,
                try_cast(split_part(entry.time, ':', 1) as bigint) * 3600
                    + try_cast(split_part(entry.time, ':', 2) as bigint) * 60
            ) as start_s,
            try_cast(entry.value as double) as rate_u_per_h
        from schedule_entries
    )
    where start_s between 0 and 86399 and rate_u_per_h >= 0

),

day_bounds as (

    select
        subject_id,
        local_date,
        epoch_ms({{ instant_of_local('local_date::timestamp', 'zone') }}) as day_start_ms,
        epoch_ms({{ instant_of_local('(local_date + 1)::timestamp', 'zone') }}) as day_end_ms

    from day_profiles

),

suspends as (

    select
        subject_id,
        start_ms,
        coalesce(end_ms, 9223372036854775807) as end_ms

    from (
        select
            subject_id,
            event_type,
            treated_ms as start_ms,
            lead(treated_ms) over (partition by subject_id order by treated_ms) as end_ms
        from treatments
        where event_type ilike 'suspend pump' or event_type ilike 'resume pump'
    )
    where event_type ilike 'suspend pump'

),

temps as (

    select
        subject_id,
        treatment_id,
        treated_ms as start_ms,
        least(
            treated_ms + coalesce(duration_min, 0) * 60000,
            coalesce(lead(treated_ms) over by_time, 9223372036854775807),
            coalesce(
                (select min(u.start_ms) from suspends as u
                 where u.subject_id = t.subject_id and u.start_ms > t.treated_ms),
                9223372036854775807
            )
        )::bigint as end_ms,
        duration_min,
        case
            when absolute_u_per_h is not null then 'temp_absolute'
            when percent_change is not null then 'temp_percent'
            when rate > {{ max_rate }} then 'temp_rate_percent'
            when rate is not null then 'temp_absolute'
        end as basal_source,
        case
            when absolute_u_per_h is not null then absolute_u_per_h
            when percent_change is null and rate <= {{ max_rate }} then rate
        end as absolute_u_per_h,
        case
            when absolute_u_per_h is not null then null
            when percent_change is not null then greatest(100 + percent_change, 0) / 100
            when rate > {{ max_rate }} then rate / 100
        end as scheduled_factor,
        coalesce(absolute_u_per_h > {{ max_rate }}, false) as is_flagged,
        case when delivered_u >= 0 then delivered_u end as delivered_u

    from treatments as t
    where event_type ilike '%temp basal%' and coalesce(duration_min, 0) between 0 and 1440
    window by_time as (partition by subject_id order by treated_ms, treatment_id)

),

breakpoints as (

    select subject_id, ms from schedule_points
    union
    select subject_id, day_start_ms from day_bounds
    union
    select subject_id, day_end_ms from day_bounds
    union
    select subject_id, start_ms from temps
    union
    select subject_id, end_ms from temps where end_ms < 9223372036854775807
    union
    select subject_id, start_ms from suspends
    union
    select subject_id, end_ms from suspends where end_ms < 9223372036854775807
    union
    select subject_id, first_ms from reach
    union
    select subject_id, last_ms from reach

),

segments as (

    select b.subject_id, b.ms as start_ms, lead(b.ms) over (partition by b.subject_id order by b.ms) as end_ms
    from breakpoints as b

),

placed as (

    -- segments inside one of the window's local days and inside the subject's data
    select s.*, d.local_date
    from segments as s
    inner join day_bounds as d
        on d.subject_id = s.subject_id
        and s.start_ms >= d.day_start_ms
        and s.start_ms < d.day_end_ms
    inner join reach as r
        on r.subject_id = s.subject_id
        and s.start_ms >= r.first_ms
        and s.end_ms <= r.last_ms
    where s.end_ms > s.start_ms

),

scheduled as (

    select s.*, p.rate_u_per_h as scheduled_u_per_h
    from placed as s
    asof left join schedule_points as p
        on p.subject_id = s.subject_id and s.start_ms >= p.ms

),

with_temp as (

    select
        s.*,
        case when s.start_ms < t.end_ms then t.treatment_id end as treatment_id,
        case when s.start_ms < t.end_ms then t.basal_source end as temp_source,
        case when s.start_ms < t.end_ms then t.absolute_u_per_h end as temp_u_per_h,
        case when s.start_ms < t.end_ms then t.scheduled_factor end as temp_factor,
        case when s.start_ms < t.end_ms then t.is_flagged else false end as is_flagged,
        case when s.start_ms < t.end_ms then t.delivered_u end as temp_delivered_u,
        case when s.start_ms < t.end_ms then t.end_ms - t.start_ms end as temp_length_ms

    from scheduled as s
    asof left join temps as t
        on t.subject_id = s.subject_id and s.start_ms >= t.start_ms

),

with_suspend as (

    select s.*, coalesce(s.start_ms < u.end_ms, false) as is_suspended
    from with_temp as s
    asof left join suspends as u
        on u.subject_id = s.subject_id and s.start_ms >= u.start_ms

),

basal as (

    select
        subject_id,
        'basal' as kind,
        case
            when is_suspended then 'suspended'
            when temp_delivered_u is not null then 'loop_amount'
            when temp_source is not null then temp_source
            else 'scheduled'
        end as basal_source,
        treatment_id,
        start_ms,
        end_ms,
        local_date,
        case
            when is_suspended then 0.0
            when temp_source is null then scheduled_u_per_h
            when temp_u_per_h is not null then temp_u_per_h
            else scheduled_u_per_h * temp_factor
        end as rate_u_per_h,
        is_flagged and not is_suspended as is_flagged,
        temp_delivered_u,
        temp_length_ms

    from with_suspend

),

basal_units as (

    select
        * exclude (temp_delivered_u, temp_length_ms),
        case
            when is_flagged then null
            when basal_source = 'loop_amount'
                then temp_delivered_u * (end_ms - start_ms) / temp_length_ms
            else rate_u_per_h * (end_ms - start_ms) / 3600000.0
        end as units

    from basal
    where rate_u_per_h is not null or is_flagged

),

boluses as (

    select
        subject_id,
        case when is_automatic then 'automatic_bolus' else 'bolus' end as kind,
        null::varchar as basal_source,
        treatment_id,
        treated_ms as start_ms,
        treated_ms as end_ms,
        local_date,
        null::double as rate_u_per_h,
        false as is_flagged,
        insulin_u as units

    from treatments
    where insulin_u > 0 and insulin_u <= {{ var('max_bolus_u') }}
        and not event_type ilike '%temp basal%'
        and {{ window_filter('local_date', before_days=1, after_days=1) }}

),

final as (

    select
        md5(subject_id || '|' || kind || '|' || start_ms::varchar || '|' || coalesce(treatment_id, ''))
            as delivery_id,
        subject_id,
        kind,
        basal_source,
        treatment_id,
        to_timestamp(start_ms / 1000) as started_at,
        to_timestamp(end_ms / 1000) as ended_at,
        local_date,
        (end_ms - start_ms) / 60000.0 as duration_min,
        rate_u_per_h,
        units,
        is_flagged

    from (select * from basal_units union all by name select * from boluses)

)

select * from final
order by local_date, subject_id, started_at
