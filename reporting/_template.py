"""The HTML template of the model report (a Python string, so it ships with the code)."""

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model report: {{ f.model.name }} — {{ f.cohort.name }}</title>
<style>
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:64em;
padding:1.5em 2em 4em;color:#1f2328;line-height:1.45;font-size:15px}
h1{font-size:1.6em;margin:.2em 0 .3em}h2{font-size:1.25em;margin:1.8em 0 .5em;padding-top:.4em;
border-top:1px solid #d8dee4}h3{font-size:1.02em;margin:1.2em 0 .4em}
p,li{max-width:52em}.sub{color:#57606a;margin:0 0 1em}
table{border-collapse:collapse;font-size:.86em;margin:.5em 0 1.2em;width:100%}
th,td{border:1px solid #d0d7de;padding:.28em .5em;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f3f5f7;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td.n{white-space:nowrap}
table.narrow{width:auto;min-width:50%}tr.me td{background:#eef6ff;font-weight:600}
.wrap{overflow-x:auto;max-width:100%}
figure{margin:1em 0 1.6em;text-align:center}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{font-size:.88em;color:#57606a;margin-top:.3em}
.key{background:#f4f8fc;border-left:5px solid #2a6fb0;padding:.6em 1.2em;margin:1em 0}
.warn{background:#fff4e5;border-left:5px solid #d9822b;padding:.6em 1.2em;margin:1em 0}
code{background:#f3f5f7;padding:0 .25em;border-radius:3px;font-size:.92em;overflow-wrap:anywhere}
td.nw,th.nw{white-space:nowrap}td.rule{min-width:12em}.nobr{white-space:nowrap}
.feat code{display:inline-block;margin:.1em .15em}.unused{text-decoration:line-through;color:#8c959f}
nav ol{columns:3;font-size:.9em;padding-left:1.4em}
.status{white-space:nowrap}.s-reported{color:#1a7f37}.s-partly{color:#9a6700}
.s-not-applicable{color:#57606a}.s-not-reported{color:#cf222e}
ul.lim li{margin:.3em 0}
@media print{body{max-width:none;font-size:11pt}h2{break-after:avoid}figure,tr{break-inside:avoid}}
</style></head><body>
{% set m = f.metrics %}{% set h = f.horizon_days %}
<h1 id="top">Model report: {{ f.model.name }} — risk of {{ endpoint[2] }} within {{ h | days }} days after each blood draw</h1>
<p class="sub">Development and internal validation of a landmark survival model on cohort
<b>{{ f.cohort.name }}</b>. Generated from MLflow run <code>{{ f.model.run_id }}</code>
(model <code>{{ f.model.model_uri }}</code>{% if f.model.registered_name %}, registered as
<b>{{ f.model.registered_name }}</b> version {{ f.model.version }}{% if f.model.aliases %}, alias {{ f.model.aliases | join(", ") }}{% endif %}{% endif %}).
Every number and figure below is read from the run; none is typed by hand.</p>

{% if f.cohort.simulated %}<div class="warn"><b>Simulated data.</b> Cohort <b>{{ f.cohort.name }}</b> was generated
by the ctcmon simulator. This report shows what the pipeline produces; it is not evidence about patients.</div>{% endif %}

<h2 id="summary">{{ sections["summary"] }}</h2>
<div class="key"><ul>
<li><b>{{ f.model.name }}</b> ({{ f.model["class"] }}) gives the risk of {{ endpoint[2] }} within
{{ h | days }} days of a blood draw, from the patient's serial markers and baseline covariates.</li>
<li>Out-of-fold discrimination: time-dependent AUC at {{ h | days }} days <b>{{ m.get("auc") | num }}</b>
{{ m.get("auc_low") | ci(m.get("auc_high")) }}; Harrell's C {{ m.get("harrell_c") | num }}
{{ m.get("harrell_c_low") | ci(m.get("harrell_c_high")) }}; Uno's C {{ m.get("uno_c") | num }}.</li>
<li>Calibration: slope <b>{{ m.get("calibration_slope") | num }}</b> {{ m.get("calibration_slope_low") | ci(m.get("calibration_slope_high")) }}
(1 is ideal); ICI {{ m.get("ici") | num }}; Brier score {{ m.get("brier") | num }}.</li>
{% if baseline and f.model.name != "baseline" %}<li>Against the covariates-only baseline: AUC {{ baseline.auc | num }} →
{{ m.get("auc") | num }} (difference {{ "%+.3f" | format(m.get("auc") - baseline.auc) if m.get("auc") is not none and baseline.auc is not none else "—" }}).</li>{% endif %}
{% if f.leadtime and f.leadtime.rules %}{% set r0 = f.leadtime.rules[0] %}<li>Lead time (rule {{ r0.rule }}):
sensitivity {{ r0.get("sensitivity") | pct }}, specificity {{ r0.get("specificity") | pct }}, median lead
{{ r0.get("lead_median") | days }} days over the confirming scan.</li>{% endif %}
<li>{{ f.cohort.n_patients | count }} patients, {{ f.cohort.n_events | count }} with an event,
{{ f.cohort.n_rows | count }} landmark rows; {{ f.limitations | length }} limitations listed <a href="#limitations">below</a>.</li>
</ul></div>

<nav><b>Contents</b><ol>{% for id, title in sections.items() if id != "summary" %}
<li><a href="#{{ id }}">{{ title }}</a></li>{% endfor %}</ol></nav>

<h2 id="intended-use">{{ sections["intended-use"] }}</h2>
<p><b>Purpose.</b> After curative treatment (resection or ablation) of hepatocellular carcinoma about
40% of patients recur within two years, and surveillance imaging runs on a fixed schedule. The model gives,
after each blood draw, the probability of {{ endpoint[2] }} within the next
{{ f.model.horizons | map("days") | join(", ") }} days, to inform the <b>timing of the next
surveillance scan</b> (bring it forward when the risk crosses the alarm threshold). It is prognostic,
<b>not a diagnosis</b>: a recurrence is confirmed by imaging, never by the score.</p>
<p><b>Population.</b> Adults under surveillance after curative treatment of HCC, from time zero
(<i>{{ f.cohort.time_zero }}</i> in this cohort) onwards, with serial CTC and serum marker draws.
Whether a cohort matches this population is judged from its manifest and the sections below.</p>
<p><b>Users.</b> Hepatologists see the risk, its band, the alarm and the imaging recommendation after each
draw (ctcmon's HTTP API); entering the draw's values and units is the only interaction; reading the
score needs no statistical expertise beyond the alarm's meaning (section <a href="#alarm">Model output</a>).</p>
<p><b>Objective of this report.</b> Development of the model and its internal validation by
patient-grouped cross-validation; no external validation (see <a href="#limitations">Limitations</a>).</p>

<h2 id="data">{{ sections["data"] }}</h2>
<table class="narrow">
<tr><th>Cohort</th><td><b>{{ f.cohort.name }}</b>{% if f.cohort.simulated %} (simulated){% endif %}</td></tr>
<tr><th>Content digest (SHA-256)</th><td><code>{{ f.cohort.digest }}</code></td></tr>
<tr><th>Source logged with the run</th><td><code>{{ f.cohort.source or "—" }}</code>
{% if f.cohort.files == "match" %}(files read: digest matches){% else %}(files {{ f.cohort.files }}){% endif %}</td></tr>
<tr><th>Time zero</th><td>{{ f.cohort.time_zero }}</td></tr>
<tr><th>Patients / with an event / landmark rows</th><td>{{ f.cohort.n_patients | count }} / {{ f.cohort.n_events | count }} / {{ f.cohort.n_rows | count }}</td></tr>
{% if f.cohort.get("accrual_start") %}<tr><th>Accrual (index dates)</th><td>{{ f.cohort.accrual_start }} to {{ f.cohort.accrual_end }}</td></tr>
<tr><th>Last outcome date (end of follow-up)</th><td>{{ f.cohort.last_date }}</td></tr>
<tr><th>Median follow-up (reverse Kaplan–Meier)</th><td>{{ f.cohort.median_followup_days | days }} days</td></tr>
<tr><th>Centres (patients)</th><td>{{ f.cohort.sites | length }}: {% for k, v in f.cohort.sites.items() %}{{ k }} ({{ v }}){{ ", " if not loop.last }}{% endfor %}</td></tr>
<tr><th>Blood draws / imaging exams</th><td>{{ f.cohort.draws | count }} (median {{ f.cohort.draws_per_patient_median | days }} per patient) / {{ f.cohort.imaging_exams | count }}</td></tr>
{% else %}<tr><th>Dates, centres, follow-up</th><td>not reported: the cohort files are {{ f.cohort.files }}</td></tr>{% endif %}
</table>
<p><b>Data preparation.</b> The cohort passed ctcmon's data contract (every file, row and column checked;
a failing cohort is refused whole). Marker values are converted to each marker's canonical unit (see
<a href="#predictors">Predictors</a>); detection-limit qualifiers (<code>&lt;</code>, <code>&gt;</code>) are kept and a
below-limit value never counts as positive. Endpoints are derived from the outcome dates, never stored.</p>
{% for fig in figures.get("data", []) %}<figure><img alt="{{ fig.caption }}" src="data:image/png;base64,{{ fig.data }}">
<figcaption>{{ fig.caption }} ({{ fig.stem }}.png).</figcaption></figure>{% endfor %}

<h2 id="eligibility">{{ sections["eligibility"] }}</h2>
<p>A patient contributes one row at each landmark (day since time zero) at which they are still <b>at risk</b>:
alive, free of the endpoint event and under follow-up. Landmarks: days {{ f.cohort.landmarks | map("days") | join(", ") }}
({{ f.cohort.landmarks | length }} landmarks, the blood-draw schedule). Features at a landmark use only data dated up to it.
Treatments after time zero are not predictors; the model is meant for the post-treatment surveillance period.</p>

<h2 id="outcome">{{ sections["outcome"] }}</h2>
<p>Endpoint <b>{{ f.cohort.endpoint | upper }}</b> ({{ endpoint[0] }}): time from the landmark to
{{ endpoint[1] }}, censored at the last follow-up. Predicted: the probability of the event within
<b>{{ h | days }} days</b> of the landmark (residual follow-up truncated at the horizon). Recurrence dates come
from the cohort's outcome table (imaging-confirmed recurrence).</p>

<h2 id="predictors">{{ sections["predictors"] }}</h2>
<p>All markers and covariates declared in the cohort manifest are candidates; no univariable pre-selection.
{{ f.predictors.n_features }} features, {{ f.predictors.n_used }} used by this model.
{% if not f.predictors.uses_markers %}<b>This model uses no marker features.</b>{% endif %}</p>
<h3>Blood markers (features summarise the draws up to each landmark)</h3>
<div class="wrap"><table>
<tr><th>Marker</th><th>Canonical unit</th><th>Cut-offs</th><th>Unit conversions</th><th>Features (<code>&lt;marker&gt;_&lt;statistic&gt;</code>)</th></tr>
{% for mk in f.predictors.markers %}<tr><td><b>{{ mk.code }}</b>{% if mk.label %}<br>{{ mk.label }}{% endif %}</td>
<td>{{ mk.unit }}</td>
<td>{% if mk.positive_at is not none %}<span class="nobr">positive ≥ {{ mk.positive_at | days }}</span>{% endif %}{% if mk.positive_at is not none and mk.upper_normal is not none %}<br>{% endif %}{% if mk.upper_normal is not none %}<span class="nobr">upper normal {{ mk.upper_normal | days }}</span>{% endif %}{% if mk.positive_at is none and mk.upper_normal is none %}—{% endif %}</td>
<td>{% for u, k in mk.conversions.items() %}{{ u }} × {{ k | days }}{{ "; " if not loop.last }}{% else %}—{% endfor %}</td>
<td class="feat">{% for ft in mk.features %}<code class="{{ '' if ft.used else 'unused' }}">{{ ft.stat }}</code>{% endfor %}</td></tr>
{% endfor %}</table></div>
<h3>Marker statistics</h3>
<div class="wrap"><table class="narrow"><tr><th>Statistic</th><th>Meaning</th></tr>
{% for s, meaning in stats %}<tr><td><code>{{ s }}</code></td><td>{{ meaning }}</td></tr>{% endfor %}</table></div>
<h3>Covariates (static, at time zero)</h3>
<div class="wrap"><table><tr><th>Covariate</th><th>Type</th><th>Encoded as</th><th>Used</th></tr>
{% for c in f.predictors.covariates %}<tr><td>{{ c.name }}</td><td>{{ c.type }}</td>
<td class="feat">{% for col in c.features %}<code>{{ col }}</code>{% endfor %}</td><td>{{ "yes" if c.used else "no" }}</td></tr>
{% endfor %}{% for o in f.predictors.other %}<tr><td>{{ o }}</td><td>numeric</td><td><code>{{ o }}</code></td><td>yes</td></tr>{% endfor %}
</table></div>
{% if f.predictors.n_used < f.predictors.n_features %}<p>Struck-through statistics are computed but not used by this model.</p>{% endif %}

<h2 id="missing">{{ sections["missing"] }}</h2>
<p>A marker statistic is missing when it is undefined at the landmark (no draw yet, no pre-operative draw,
too few draws for a slope); counts are 0 without a draw. {% if f.model.name.startswith("xgb") %}<b>This model
(XGBoost) takes missing values natively</b>: each split learns a default direction.{% else %}<b>This model imputes</b>
each feature's training median and adds a missing-value indicator per feature, fitted inside each training fold.{% endif %}
Patients are never dropped for missing markers. Covariates follow the same rule.</p>

<h2 id="sample-size">{{ sections["sample-size"] }}</h2>
<p>No sample-size calculation: the model is developed on the whole available cohort.
{{ f.cohort.n_patients | count }} patients at risk at a landmark, of whom {{ f.cohort.n_events | count }} had the event within {{ h | days }} days of one of their landmarks
({{ (f.cohort.n_events / f.cohort.n_patients) | pct if f.cohort.n_patients else "—" }}) and
{{ (f.cohort.n_patients - f.cohort.n_events) | count if f.cohort.n_patients is not none and f.cohort.n_events is not none else "—" }} did not;
{{ f.cohort.n_rows | count }} landmark rows; {{ "%.1f" | format(f.cohort.n_events / f.predictors.n_used) if f.cohort.n_events and f.predictors.n_used else "—" }}
events per candidate feature. Patients at risk and events within the horizon at each landmark are in the
<a href="#discrimination">discrimination table</a>.</p>

<h2 id="model">{{ sections["model"] }}</h2>
<p><b>{{ f.model.name }}</b> (<code>{{ f.model["class"] }}</code>): {{ f.model.description }}
The model is fitted on the stacked landmark rows (a landmark supermodel with the landmark day as a feature)
and gives absolute risks at {{ f.model.horizons | map("days") | join(", ") }} days.
Hyperparameters are fixed (no tuning inside the cross-validation): </p>
<div class="wrap"><table class="narrow"><tr><th>Hyperparameter</th><th>Value</th></tr>
{% for k, v in f.hyperparameters.items() %}<tr><td><code>{{ k }}</code></td><td>{{ v }}</td></tr>{% else %}<tr><td colspan="2">none logged</td></tr>{% endfor %}
</table></div>

<h2 id="validation">{{ sections["validation"] }}</h2>
<p>{% if f.params.get("folds_file") not in (none, "None") %}Folds from <code>{{ f.params.folds_file }}</code>{% else %}<b>{{ f.params.get("folds") }}-fold
cross-validation grouped by patient</b> (all landmark rows of a patient on one side) and stratified on the event
(seed {{ f.params.get("seed") }}){% endif %}. Each row is scored by a model that never saw its patient; every metric is computed
on these pooled out-of-fold (OOF) predictions. IPCW weights use the untruncated follow-up. 95% CIs: patient-level
cluster bootstrap ({{ f.params.get("n_boot") }} resamples) of the OOF predictions; calibration-slope CI from a
patient-clustered sandwich variance. The packaged model is refitted on all rows but carries these OOF metrics.</p>
{% if f.tables.get("by_fold") %}<div class="wrap"><table class="narrow"><tr>{% for k in f.tables.by_fold[0].keys() %}<th class="n">{{ fold_heads.get(k, k) }}</th>{% endfor %}</tr>
{% for r in f.tables.by_fold %}<tr>{% for k, v in r.items() %}<td class="n">{{ v | count if k in ("fold", "n_test_rows") else v | num }}</td>{% endfor %}</tr>{% endfor %}
</table></div>{% endif %}

<h2 id="discrimination">{{ sections["discrimination"] }}</h2>
<div class="wrap"><table class="narrow"><tr><th>Measure (out-of-fold, horizon {{ h | days }} days)</th><th class="n">Estimate</th><th class="n">95% CI</th></tr>
<tr><td>Harrell's C</td><td class="n">{{ m.get("harrell_c") | num }}</td><td class="n">{{ m.get("harrell_c_low") | ci(m.get("harrell_c_high")) or "—" }}</td></tr>
<tr><td>Uno's C (truncated at the horizon)</td><td class="n">{{ m.get("uno_c") | num }}</td><td class="n">—</td></tr>
<tr><td>Time-dependent AUC at {{ h | days }} days (averaged over landmarks)</td><td class="n">{{ m.get("auc") | num }}</td><td class="n">{{ m.get("auc_low") | ci(m.get("auc_high")) or "—" }}</td></tr>
<tr><td>Brier score at {{ h | days }} days (lower is better)</td><td class="n">{{ m.get("brier") | num }}</td><td class="n">—</td></tr>
<tr><td>Integrated Brier score over (0, {{ h | days }}] days</td><td class="n">{{ m.get("integrated_brier") | num }}</td><td class="n">—</td></tr>
</table></div>
{% for fig in figures.get("discrimination", []) %}<figure><img alt="{{ fig.caption }}" src="data:image/png;base64,{{ fig.data }}">
<figcaption>{{ fig.caption }} ({{ fig.stem }}.png).</figcaption></figure>{% endfor %}
{% if f.tables.get("by_landmark") %}<h3>By landmark</h3><div class="wrap"><table><tr><th class="n">Landmark day</th>
<th class="n">At risk</th><th class="n">Events within {{ h | days }} d</th><th class="n">AUC</th><th class="n">Brier</th><th class="n">Harrell's C</th><th class="n">Uno's C</th><th>Not scored because</th></tr>
{% for r in f.tables.by_landmark %}<tr><td class="n">{{ r.landmark_day | days }}</td><td class="n">{{ r.n_at_risk | count }}</td><td class="n">{{ r.n_events | count }}</td>
<td class="n">{{ r.auc | num }}</td><td class="n">{{ r.brier | num }}</td><td class="n">{{ r.get("harrell_c") | num }}</td><td class="n">{{ r.get("uno_c") | num }}</td><td>{{ r.get("reason") or "" }}</td></tr>{% endfor %}
</table></div>{% endif %}

<h2 id="calibration">{{ sections["calibration"] }}</h2>
<div class="wrap"><table class="narrow"><tr><th>Measure (risk within {{ h | days }} days)</th><th class="n">Estimate</th><th class="n">95% CI</th></tr>
<tr><td>Calibration slope (Cox on cloglog risk; 1 is ideal, &lt; 1 too extreme)</td><td class="n">{{ m.get("calibration_slope") | num }}</td><td class="n">{{ m.get("calibration_slope_low") | ci(m.get("calibration_slope_high")) or "—" }}</td></tr>
<tr><td>ICI (mean |observed − predicted|)</td><td class="n">{{ m.get("ici") | num }}</td><td class="n">—</td></tr>
<tr><td>E50 (median absolute error)</td><td class="n">{{ m.get("e50") | num }}</td><td class="n">—</td></tr>
<tr><td>E90 (90th percentile absolute error)</td><td class="n">{{ m.get("e90") | num }}</td><td class="n">—</td></tr>
</table></div>
{% for fig in figures.get("calibration", []) %}<figure><img alt="{{ fig.caption }}" src="data:image/png;base64,{{ fig.data }}" style="width:600px">
<figcaption>{{ fig.caption }} ({{ fig.stem }}.png).</figcaption></figure>{% else %}<p>No calibration plot was logged{% if f.notes %} (see the training notes in Limitations){% endif %}.</p>{% endfor %}
{% if f.tables.get("calibration") %}<h3>Grouped calibration</h3><div class="wrap"><table class="narrow"><tr><th class="n">Group</th><th class="n">Rows</th><th class="n">Events</th>
<th class="n">Mean predicted</th><th class="n">Observed (Kaplan–Meier)</th><th class="n">95% CI</th></tr>
{% for r in f.tables.calibration %}<tr><td class="n">{{ r.group }}</td><td class="n">{{ r.n | count }}</td><td class="n">{{ r.n_events | count }}</td>
<td class="n">{{ r.predicted | num }}</td><td class="n">{{ r.observed | num }}</td><td class="n">{{ r.observed_low | ci(r.observed_high) }}</td></tr>{% endfor %}
</table></div>{% endif %}

<h2 id="decision-curve">{{ sections["decision-curve"] }}</h2>
<p>Net benefit of bringing imaging forward for rows whose predicted risk exceeds the threshold probability,
against imaging everyone early (treat all) or no one (treat none); censoring handled by Kaplan–Meier.</p>
{% for fig in figures.get("decision-curve", []) %}<figure><img alt="{{ fig.caption }}" src="data:image/png;base64,{{ fig.data }}">
<figcaption>{{ fig.caption }} ({{ fig.stem }}.png).</figcaption></figure>{% endfor %}
{% if decision_rows %}<div class="wrap"><table class="narrow"><tr><th class="n">Threshold</th><th class="n">Net benefit, model</th>
<th class="n">Treat all</th><th class="n">Rows above threshold</th></tr>
{% for r in decision_rows %}<tr{% if r.alarm %} class="me"{% endif %}><td class="n">{{ r.threshold | num(2) }}{% if r.alarm %} (≈ alarm){% endif %}</td><td class="n">{{ r.net_benefit | num }}</td>
<td class="n">{{ r.treat_all | num }}</td><td class="n">{{ r.get("n_treated") | count }}</td></tr>{% endfor %}
</table></div>{% endif %}

<h2 id="alarm">{{ sections["alarm"] }}</h2>
<p>Output: the probability of the event within {{ f.model.horizons | map("days") | join(", ") }} days of the
assessment, a band (low / intermediate / high) and an alarm. The alarm sounds when the {{ f.alarm.horizon_days | days }}-day risk
is at least the threshold, set on the out-of-fold risks to reach the target specificity.</p>
<table class="narrow"><tr><th>Alarm horizon</th><td class="n">{{ f.alarm.horizon_days | days }} days</td></tr>
<tr><th>Alarm threshold (band "high" at or above)</th><td class="n">{{ f.alarm.threshold | num(4) }}</td></tr>
<tr><th>Band "low" below</th><td class="n">{{ f.alarm.low_below | num(4) }}</td></tr>
<tr><th>Target specificity</th><td class="n">{{ f.alarm.target_specificity | num(2) }}</td></tr>
<tr><th>Expected lead (days)</th><td class="n">{{ f.alarm.expected_lead_days | days }}</td></tr></table>

<h2 id="comparison">{{ sections["comparison"] }}</h2>
{% if f.comparison | length > 1 %}<p>Latest run of each model in experiment <b>{{ f.model.experiment }}</b> on the same cohort
(same digest) and horizon; the reported model is highlighted. Δ AUC is against the covariates-only baseline.</p>
<div class="wrap"><table><tr><th>Model</th><th class="n">Harrell's C (95% CI)</th><th class="n">Uno's C</th><th class="n">AUC (95% CI)</th>
<th class="n">Δ AUC</th><th class="n">Brier</th><th class="n">IBS</th><th class="n">Cal. slope (95% CI)</th><th class="n">ICI</th></tr>
{% for r in f.comparison %}<tr{% if r.reported %} class="me"{% endif %}><td>{{ r.model }}</td>
<td class="n">{{ r.harrell_c | num }} {{ r.harrell_c_low | ci(r.harrell_c_high) }}</td><td class="n">{{ r.uno_c | num }}</td>
<td class="n">{{ r.auc | num }} {{ r.auc_low | ci(r.auc_high) }}</td><td class="n">{{ "%+.3f" | format(r.delta_auc_vs_baseline) if r.delta_auc_vs_baseline is not none else "—" }}</td>
<td class="n">{{ r.brier | num }}</td><td class="n">{{ r.integrated_brier | num }}</td>
<td class="n">{{ r.calibration_slope | num }} {{ r.calibration_slope_low | ci(r.calibration_slope_high) }}</td><td class="n">{{ r.ici | num }}</td></tr>{% endfor %}
</table></div>
{% for fig in figures.get("comparison", []) %}<figure><img alt="{{ fig.caption }}" src="data:image/png;base64,{{ fig.data }}">
<figcaption>{{ fig.caption }} ({{ fig.stem }}.png).</figcaption></figure>{% endfor %}
{% else %}<p>No other model was trained on this cohort at this horizon in experiment <b>{{ f.model.experiment }}</b>.</p>{% endif %}

<h2 id="leadtime">{{ sections["leadtime"] }}</h2>
{% if f.leadtime %}<p>From lead-time run <code>{{ f.leadtime.run_id }}</code> (<code>ctcmon leadtime</code>; model risks
{{ f.leadtime.model_risks or "—" }}; look-back {{ f.leadtime.lookback_days | days }} days; {{ f.leadtime.n_boot }} bootstrap resamples).
Sensitivity: recurrences preceded by an alarm; specificity: recurrence-free patients never alarmed; lead: days from
the first alarm to the confirming scan. Rules marked "threshold at specificity" were tuned on this cohort.</p>
<div class="wrap"><table><tr><th>Rule</th><th class="n">Sensitivity</th><th class="n">Specificity</th><th class="n">Median lead (days)</th>
<th class="n">Lead vs last negative scan (days)</th><th class="n">False alarms per patient-year</th><th class="n">PPV</th><th class="n">HR</th></tr>
{% for r in f.leadtime.rules %}<tr><td class="rule">{{ r.rule }}</td><td class="n">{{ r.get("sensitivity") | pct }}</td><td class="n">{{ r.get("specificity") | pct }}</td>
<td class="n">{{ r.get("lead_median") | days }}</td><td class="n">{{ r.get("lead_vs_last_negative_median") | days }}</td>
<td class="n">{{ r.get("false_alarms_per_patient_year") | num }}</td><td class="n">{{ r.get("ppv") | pct }}</td><td class="n">{{ r.get("hazard_ratio") | num(2) }}</td></tr>{% endfor %}
</table></div>{% else %}<p>No lead-time analysis of this model on this cohort is logged (run <code>ctcmon leadtime COHORT --model {{ f.model.model_uri }}</code>).</p>{% endif %}

<h2 id="limitations">{{ sections["limitations"] }}</h2>
<ul class="lim">{% for l in f.limitations %}<li>{{ l | ticks }}</li>{% endfor %}</ul>

<h2 id="reproducibility">{{ sections["reproducibility"] }}</h2>
<table class="narrow">
<tr><th>Model URI</th><td><code>{{ f.model.model_uri }}</code></td></tr>
<tr><th>Registered model / version / aliases</th><td>{{ f.model.registered_name or "not registered" }}{% if f.model.version %} / {{ f.model.version }} / {{ f.model.aliases | join(", ") or "—" }}{% endif %}</td></tr>
{% if f.model.version_tags %}<tr><th>Version tags</th><td>{% for k, v in f.model.version_tags.items() %}<code>{{ k }}={{ v }}</code> {% endfor %}</td></tr>{% endif %}
<tr><th>Registered at</th><td>{{ f.model.registered_at or "—" }}</td></tr>
<tr><th>MLflow run (name)</th><td><code>{{ f.model.run_id }}</code> ({{ f.model.run_name }}), experiment {{ f.model.experiment }}</td></tr>
<tr><th>Run started / model fitted</th><td>{{ f.model.run_started or "—" }} / {{ f.model.trained_at or "—" }}</td></tr>
<tr><th>ctcmon version</th><td>{{ f.model.ctcmon_version or "—" }}</td></tr>
<tr><th>Git commit</th><td><code>{{ f.model.git_commit or "not recorded" }}</code></td></tr>
<tr><th>Tracking store</th><td><code>{{ f.model.tracking_uri }}</code></td></tr>
<tr><th>Training configuration</th><td>{% for k, v in f.params.items() if not k.startswith("model.") and k != "landmarks" %}<code>{{ k }}={{ v }}</code> {% endfor %}</td></tr>
</table>
<p>The model is an MLflow pyfunc: <code>mlflow.pyfunc.load_model("{{ f.model.model_uri }}")</code>, input a list of
patient histories (contract fields), output one assessment each; ctcmon must be installed. The facts behind this
report are in <code>model_report.json</code>.</p>

<h2 id="tripod">{{ sections["tripod"] }}</h2>
<p>TRIPOD+AI (Collins et al., BMJ 2024;385:e078378): where each item is covered in this report. Topics paraphrased.</p>
<div class="wrap"><table><tr><th class="nw">Item</th><th>Topic</th><th>Status</th><th>Section</th><th>Note</th></tr>
{% for t in f.tripod %}<tr id="tripod-{{ t.number }}"><td class="nw">{{ t.number }}</td><td>{{ t.topic }}</td>
<td class="status s-{{ t.status.split(' ')[0] if t.status != 'not applicable' and t.status != 'not reported' else t.status.replace(' ', '-') }}">{{ t.status }}</td>
<td>{% for s in t.sections %}<a href="#{{ s.id }}">{{ s.title }}</a>{{ ", " if not loop.last }}{% else %}—{% endfor %}</td><td>{{ t.note | ticks }}</td></tr>{% endfor %}
</table></div>
</body></html>
"""
