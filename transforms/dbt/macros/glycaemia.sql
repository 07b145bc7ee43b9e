{#-
  Glycaemic metrics, shared by the daily, period and pattern marts so all follow one definition:
  the International Consensus on Time in Range (Battelino 2019) as implemented by iglu.
  Percentages are of readings; SD is the sample SD (n - 1); below is strict (<), above is
  strict (>), in range is inclusive. Metrics are rounded to 4 decimals (`metric_decimals`),
  far below clinical relevance, so that results are stable and comparable exactly.
-#}

{% macro metric_decimals() %}{{ return(4) }}{% endmacro %}

{#- `expression` rounded to the marts' precision. -#}
{% macro metric(expression) -%}
    round({{ expression }}, {{ metric_decimals() }})
{%- endmacro %}

{#- The five consensus bands of one reading. -#}
{% macro glucose_band(gl) -%}
    case
        when {{ gl }} < 54 then 'very_low'
        when {{ gl }} < 70 then 'low'
        when {{ gl }} <= 180 then 'target'
        when {{ gl }} <= 250 then 'high'
        else 'very_high'
    end
{%- endmacro %}

{#- Kovatchev's symmetrised BG risk scale: f = 1.509 * (ln(gl)^1.084 - 5.381). -#}
{% macro bg_risk_f(gl) -%}
    (1.509 * (pow(ln({{ gl }}), 1.084) - 5.381))
{%- endmacro %}

{#- Percentage of readings where `condition` holds (unrounded). -#}
{% macro pct_where(condition, gl) -%}
    (100.0 * count({{ gl }}) filter (where {{ condition }}) / nullif(count({{ gl }}), 0))
{%- endmacro %}

{#- Every metric of a group of readings; callers pick the columns they need. -#}
{% macro glycaemia_metrics(gl='glucose_mg_dl') -%}
    {%- set very_low = pct_where(gl ~ ' < 54', gl) -%}
    {%- set low = pct_where(gl ~ ' >= 54 and ' ~ gl ~ ' < 70', gl) -%}
    {%- set high = pct_where(gl ~ ' > 180 and ' ~ gl ~ ' <= 250', gl) -%}
    {%- set very_high = pct_where(gl ~ ' > 250', gl) -%}
        count({{ gl }}) as readings,
        {{ metric('avg(' ~ gl ~ ')') }} as mean_mg_dl,
        {{ metric('stddev_samp(' ~ gl ~ ')') }} as sd_mg_dl,
        {{ metric('100 * stddev_samp(' ~ gl ~ ') / avg(' ~ gl ~ ')') }} as cv_pct,
        {{ metric('3.31 + 0.02392 * avg(' ~ gl ~ ')') }} as gmi_pct,
        {{ metric(very_low) }} as pct_very_low,
        {{ metric(low) }} as pct_low,
        {{ metric(pct_where(gl ~ ' >= 70 and ' ~ gl ~ ' <= 180', gl)) }} as pct_target,
        {{ metric(high) }} as pct_high,
        {{ metric(very_high) }} as pct_very_high,
        {{ metric(pct_where(gl ~ ' < 70', gl)) }} as pct_below_70,
        {{ metric(pct_where(gl ~ ' > 180', gl)) }} as pct_above_180,
        {{ metric(pct_where(gl ~ ' >= 70 and ' ~ gl ~ ' <= 140', gl)) }} as titr_pct,
        min({{ gl }}) as min_mg_dl,
        max({{ gl }}) as max_mg_dl,
        {{ metric('0.001 * pow(avg(' ~ gl ~ ') + stddev_samp(' ~ gl ~ '), 2)') }} as j_index,
        {{ metric('avg(case when ' ~ bg_risk_f(gl) ~ ' < 0 then 10 * pow(' ~ bg_risk_f(gl) ~ ', 2) else 0 end)') }}
            as lbgi,
        {{ metric('avg(case when ' ~ bg_risk_f(gl) ~ ' > 0 then 10 * pow(' ~ bg_risk_f(gl) ~ ', 2) else 0 end)') }}
            as hbgi,
        {{ metric('least(100.0, 3.0 * ' ~ very_low ~ ' + 2.4 * ' ~ low ~ ' + 1.6 * ' ~ very_high ~ ' + 0.8 * ' ~ high ~ ')') }}
            as gri
{%- endmacro %}
