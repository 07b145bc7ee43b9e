{{ config(materialized='incremental', window_before_days=1) }}

{#-
  One row per consensus glycaemic episode (Battelino et al. 2023), found as iglu's
  episode_calculation finds them with its defaults (macros/episodes.sql). local_date is the local
  day the episode started on. A run rebuilds the episodes that started in its window or the day
  before (an episode open at the end of yesterday's run gets its real end), from readings from
  `episode_lookback_days` before the window (so a start is seen with its run-up) to a day after
  it (so an episode open at the window's end can close): a run's cost does not grow with history.
  An episode longer than the look-back (a day without 15 min back across the threshold and no gap
  over 45 min) is cut where a run's readings begin or end.
-#}

{%- set lookback_days = 3 %}

with

readings as (

    select subject_id, reading_at, glucose_mg_dl
    from {{ ref('fct_glucose_readings') }}
    where {{ window_filter('local_date', before_days=lookback_days, after_days=1) }}

),

subject_zones as (

    -- the local clock of the reading at or before an episode's start gives its local date
    select subject_id, reading_at, local_at
    from {{ ref('fct_glucose_readings') }}
    where {{ window_filter('local_date', before_days=lookback_days, after_days=1) }}

),

episodes as (

    {{ glycaemic_episodes('readings') }}

),

localised as (

    select
        e.*,
        (z.local_at + (e.started_at - z.reading_at))::date as local_date

    from episodes as e
    asof left join subject_zones as z
        on z.subject_id = e.subject_id and z.reading_at <= e.started_at

),

final as (

    select
        subject_id,
        episode_type,
        level,
        started_at,
        ended_at,
        local_date,
        duration_min,
        mean_mg_dl,
        nadir_mg_dl,
        peak_mg_dl,
        reaches_lv2,
        grid_points,
        dt0_min

    from localised
    where {{ window_filter('local_date', before_days=1) }}

)

select * from final
order by local_date, subject_id, started_at, episode_type, level
