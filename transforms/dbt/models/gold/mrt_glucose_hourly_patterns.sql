{#- Glucose by local hour of day and ISO weekday per subject, over all data: when highs and lows happen. -#}

with

readings as (

    select subject_id, iso_weekday, local_hour, glucose_mg_dl
    from {{ ref('fct_glucose_readings') }}

),

metrics as (

    select
        subject_id,
        iso_weekday,
        local_hour,
        {{ glycaemia_metrics('glucose_mg_dl') }},
        {{ metric('median(glucose_mg_dl)') }} as median_mg_dl

    from readings
    group by subject_id, iso_weekday, local_hour

),

final as (

    select
        subject_id,
        iso_weekday,
        local_hour,
        readings::integer as readings,
        mean_mg_dl,
        median_mg_dl,
        sd_mg_dl,
        pct_below_70,
        pct_target,
        pct_above_180

    from metrics

)

select * from final
order by subject_id, iso_weekday, local_hour
