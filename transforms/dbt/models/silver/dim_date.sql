{#-
  Every local date from the first to the last day with a reading, in the configured timezone,
  with calendar attributes and the day's length (DST days have 1380 or 1500 minutes).
-#}

with

bounds as (

    select min(local_date) as first_day, max(local_date) as last_day
    from {{ ref('stg_entries') }}

),

days as (

    select unnest(generate_series(first_day, last_day, interval 1 day))::date as date_day
    from bounds
    where first_day is not null

),

final as (

    select
        date_day,
        year(date_day)::integer as year,
        month(date_day)::integer as month,
        day(date_day)::integer as day_of_month,
        isodow(date_day)::integer as iso_weekday,
        dayname(date_day) as weekday_name,
        isodow(date_day) >= 6 as is_weekend,
        weekofyear(date_day)::integer as iso_week,
        ({{ minutes_in_local_day('date_day') }})::integer as minutes_in_day

    from days

)

select * from final
order by date_day
