"""The HTML template of the lead-time report (a Python string, so it ships with the code)."""

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ r.cohort.name }} — lead time of blood-marker alarms over imaging</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:80em;color:#222;line-height:1.4}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .55em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;white-space:nowrap}
img{max-width:100%}figure{margin:1em 0 2em}figcaption{font-size:.9em;color:#555}
.key{background:#f6f9fc;border-left:4px solid #2a6fb0;padding:.6em 1em}
.notes li{color:#6b4a00}code{background:#f3f3f3;padding:0 .2em}
</style></head><body>
<h1>Do blood-marker alarms see recurrence before imaging?</h1>
<p>Cohort <b>{{ r.cohort.name }}</b>: {{ r.cohort.n_patients }} patients,
{{ r.cohort.n_recurrences }} imaging-confirmed recurrences.
{% if r.model %}Model <code>{{ r.model.model_uri }}</code> ({{ r.model.model_name }}),
risks {{ r.model.mode }}.{% endif %}</p>

<h2>Key findings</h2>
<div class="key"><ul>
{% for h in headline %}{% set m = h.metrics %}
<li><b>{{ h.name }}</b>: alarm before {{ m.n_detected }} of {{ m.n_recurrences }} recurrences
(sensitivity {{ m.sensitivity | pct }} {{ m.sensitivity_ci | ci_pct }}),
median lead {{ m.lead_median | num }} days {{ m.lead_median_ci | ci_num }} before the confirming scan
and {{ m.lead_vs_last_negative_median | num }} days before the last negative scan;
{{ m.share_before_last_negative | pct }} of detected recurrences were alarmed while imaging was still negative.
In {{ m.n_detected_ongoing_episode }} of them the alarm was still sounding at recurrence; that episode began a median
{{ m.episode_lead_median | num }} days {{ m.episode_lead_median_ci | ci_num }} before the confirming scan.
Specificity {{ m.specificity | pct }} {{ m.specificity_ci | ci_pct }};
{{ m.false_alarms_per_patient_year | num(2) }} false alarms per patient-year.</li>
{% endfor %}</ul></div>

<h2>Design and definitions</h2>
<ul>
<li>Recurrence date: the imaging-confirmed recurrence of the contract's outcomes. It is only known
to lie between the <em>last negative scan</em> (finding <code>no_evidence</code>; day 0 if none) and the
<em>confirming scan</em>; lead times are given against both ends. Imaging schedule: days
{{ r.cohort.imaging_schedule_days | join(", ") }}, then regularly.</li>
<li>Alarm: a post-index blood draw (or risk assessment) at which the rule holds
{% if r.settings.confirm > 1 %}on {{ r.settings.confirm }} consecutive evaluable draws{% else %}(no confirmation){% endif %}.
A recurrence counts as detected when an alarm sounded in the {{ r.settings.lookback_days | num }} days up to
and including the confirming scan; lead time = confirming scan − first alarm in that window (the primary figure).</li>
<li>Episode lead time: confirming scan − first alarm of the alarm episode still ongoing at recurrence. An episode is
an uninterrupted run of alarming draws (or assessments): the next evaluable draw that does not alarm ends it; draws
where the rule cannot be evaluated are skipped{% if r.settings.confirm > 1 %}; with confirmation it starts at the
{{ r.settings.confirm }}th consecutive positive draw{% endif %}. It counts only when the last evaluable draw in the
window alarms, and starts no earlier than the window. An early alarm that lapsed before the signal that persisted
into the recurrence lengthens the first-alarm lead but not the episode lead, so the episode lead is never longer.</li>
<li>Sensitivity: detected / all recurrences. Specificity: recurrence-free patients never alarmed during
follow-up / all recurrence-free patients with an evaluable draw. False alarms: alarms outside any recurrence's
look-back window, per patient-year of post-index follow-up. PPV: detected recurrences / patients ever alarmed.</li>
<li>Hazard ratio: time-dependent Cox model of current alarm status (last state carried forward) for
recurrence; death and loss to follow-up censor.</li>
<li>95% CIs: percentile bootstrap over patients ({{ r.settings.n_boot }} resamples, shared by all rules, so
differences between rules are paired); hazard-ratio CIs are Wald intervals.</li>
<li>Threshold sweeps pick the most sensitive threshold with specificity ≥ {{ r.settings.specificity }} on this
cohort (rows marked “specificity ≥”): optimistic until validated elsewhere.</li>
</ul>

<h2>Rules side by side</h2>
<table><tr><th>Rule</th><th>Recurrences detected</th><th>Sensitivity (95% CI)</th>
<th>Specificity (95% CI)</th><th>False alarms / patient-year (95% CI)</th><th>PPV (95% CI)</th>
<th>Median lead, days (IQR) [95% CI]</th><th>Median episode lead, days (IQR) [95% CI]</th>
<th>HR of alarm status (95% CI)</th></tr>
{% for x in r.rules %}{% set m = x.metrics %}<tr><td>{{ x.name }}</td>
<td class="n">{{ m.n_detected }} / {{ m.n_recurrences }}</td>
<td class="n">{{ m.sensitivity | pct }} {{ m.sensitivity_ci | ci_pct }}</td>
<td class="n">{{ m.specificity | pct }} {{ m.specificity_ci | ci_pct }}</td>
<td class="n">{{ m.false_alarms_per_patient_year | num(3) }} {{ m.false_alarms_per_patient_year_ci | ci_num(3) }}</td>
<td class="n">{{ m.ppv | pct }} {{ m.ppv_ci | ci_pct }}</td>
<td class="n">{{ m.lead | median_iqr(m.lead_median_ci) }}</td>
<td class="n">{{ m.episode_lead | median_iqr(m.episode_lead_median_ci) }}</td>
<td class="n">{{ x.hazard_ratio | hr }}</td></tr>
{% endfor %}</table>

<h2>Lead time against both ends of the imaging interval</h2>
<table><tr><th>Rule</th><th>vs confirming scan, days: median (IQR; range)</th>
<th>vs last negative scan, days: median (IQR; range)</th>
<th>Episode ongoing at recurrence: lead vs confirming scan, days: median (IQR; range)</th>
<th>Alarmed while imaging still negative (95% CI)</th>
<th>Recurrences without a draw in the window</th></tr>
{% for x in r.rules %}{% set m = x.metrics %}<tr><td>{{ x.name }}</td>
<td class="n">{{ m.lead | spread }}</td><td class="n">{{ m.lead_vs_last_negative | spread }}</td>
<td class="n">{{ m.episode_lead | spread }}; n = {{ m.n_detected_ongoing_episode }} of {{ m.n_detected }}</td>
<td class="n">{{ m.share_before_last_negative | pct }} {{ m.share_before_last_negative_ci | ci_pct }}</td>
<td class="n">{{ m.n_recurrences_without_points_in_window }}</td></tr>
{% endfor %}</table>
<p>A lead shorter than the scan interval is partly an artefact of the schedule: the recurrence may already
have been visible soon after the last negative scan. Only alarms before the last negative scan are
unambiguously earlier than imaging.</p>

{% if r.rules | length > 1 %}<h2>Paired comparison with {{ r.rules[0].name }}</h2>
<table><tr><th>Rule</th><th>Δ sensitivity</th><th>Δ specificity</th><th>Δ false alarms / patient-year</th>
<th>Δ median lead, days</th><th>Δ median episode lead, days</th></tr>
{% for x in r.rules[1:] %}{% set c = x.vs_reference %}<tr><td>{{ x.name }}</td>
<td class="n">{{ c.sensitivity.difference | pct }} {{ c.sensitivity.ci | ci_pct }}</td>
<td class="n">{{ c.specificity.difference | pct }} {{ c.specificity.ci | ci_pct }}</td>
<td class="n">{{ c.false_alarms_per_patient_year.difference | num(3) }} {{ c.false_alarms_per_patient_year.ci | ci_num(3) }}</td>
<td class="n">{{ c.lead_median.difference | num }} {{ c.lead_median.ci | ci_num }}</td>
<td class="n">{{ c.episode_lead_median.difference | num }} {{ c.episode_lead_median.ci | ci_num }}</td></tr>
{% endfor %}</table>{% endif %}

{% if r.truth %}<h2>Truth check (simulated cohort)</h2>
<p>Latent lead available (imaging-visible day − day the marker signal became detectable) over
{{ r.truth.latent.n_recurrences_with_truth }} recurrences: median {{ r.truth.latent.latent_lead_median | num }} days
(IQR {{ r.truth.latent.latent_lead_q1 | num }}–{{ r.truth.latent.latent_lead_q3 | num }}).
An observed lead may exceed the latent one only by the imaging interval (bound: lead ≤ latent lead + last negative
→ confirming scan interval). It is checked for the first alarm in the window and for the episode ongoing at
recurrence. A detection outside the bound either follows a scan that missed an already visible lesion (the interval
then understates how late imaging was), or its alarm came before the expected tumour-derived level reached the
cut-off: a noisy draw on top of the patient's background crossed it early. How far below the cut-off the tumour
signal then was, in tumour doublings, tells an early sighting (about one doubling) from noise (many).</p>
<table><tr><th>Rule</th><th>Alarm</th><th>Detected</th><th>Within bound</th><th>Outside: after a missed scan / other</th>
<th>Alarm after the latent signal</th><th>Alarms before it: doublings early, median (max)</th><th>Observed median lead</th>
<th>Latent median lead (same patients)</th><th>Share of latent lead captured (median)</th></tr>
{% for x in r.rules %}{% for label, t in (("first in window", x.truth), ("episode at recurrence", x.truth.episode)) %}
<tr><td>{{ x.name }}</td><td>{{ label }}</td><td class="n">{{ t.n_detected }}</td>
<td class="n">{{ t.share_within_bound | pct }}</td>
<td class="n">{{ t.n_outside_bound_after_missed_scan }} / {{ t.n_outside_bound - t.n_outside_bound_after_missed_scan }}</td>
<td class="n">{{ t.share_alarm_after_signal | pct }}</td>
<td class="n">{{ t.before_signal_doublings_median | num(1) }} ({{ t.before_signal_doublings_max | num(1) }})</td>
<td class="n">{{ t.observed_lead_median | num }}</td>
<td class="n">{{ t.latent_lead_median | num }}</td><td class="n">{{ t.captured_median | pct }}</td></tr>
{% endfor %}{% endfor %}</table>{% endif %}

<h2>Figures</h2>
{% for f in figures %}<figure><img alt="{{ f.title }}" src="data:image/png;base64,{{ f.data }}">
<figcaption>{{ f.title }} ({{ f.file }})</figcaption></figure>{% endfor %}

{% if r.sweeps %}<h2>Thresholds at the target specificity</h2>
<table><tr><th>Score</th><th>Chosen threshold</th><th>Target specificity reached</th><th>Thresholds tried</th></tr>
{% for s in r.sweeps %}<tr><td>{{ s.score_name }}</td><td class="n">{{ s.chosen | num(4) }}</td>
<td>{{ "yes" if s.reached else "no" }}</td><td class="n">{{ s.table | length }}</td></tr>{% endfor %}
</table><p>Full sweep tables: <code>sweep.csv</code>; per recurrence lead times: <code>lead_times.csv</code>;
everything: <code>leadtime.json</code>.</p>{% endif %}

{% if r.notes %}<h2>Notes and limitations</h2><ul class="notes">
{% for n in r.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
</body></html>
"""
