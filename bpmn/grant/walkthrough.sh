#!/bin/sh
# One application from draft to final report with the samflyt CLI, on the database `samflyt demo` made.
#
#   samflyt demo && sh bpmn/grant/walkthrough.sh
#
# Every step is a command a user's action maps to; `tick --now` stands in for the scheduler passing the
# deadline. Set SAMFLYT to the command to use (default: samflyt) and SAMFLYT_DATABASE_URL for the database.
set -eu
S="${SAMFLYT:-samflyt}"
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
task() { $S --json tasks --instance "$1" | json "next(t['id'] for t in d if t['name'] == '$2')"; }
complete() { $S complete "$(task "$1" "$2")" --as "$3" --data "$4" > /dev/null; echo "  $2 done by $3"; }

YEAR=$(date +%Y)
NEXT=$((YEAR + 1))
DEADLINE=$(python3 -c "import datetime; print(datetime.date.today() + datetime.timedelta(days=30))")
AFTER=$(python3 -c "import datetime; print(datetime.date.today() + datetime.timedelta(days=34))")T08:00:00

echo "1. The allocation letter for $YEAR is recorded; AU drafts, approves and publishes the call"
$S connector ledger.allocate --as admin --params "{\"year\": $YEAR, \"amount\": 5000000, \"reference\": \"Tildelingsbrev $YEAR\", \"community\": \"Helsefellesskapet i Vestfold\"}" > /dev/null
ROUND=$($S --json start grant_round --as per --title "Gjennomgang $YEAR" | json "d['id']")
complete "$ROUND" draft_call per "{\"title\": \"Rekrutterings- og samhandlingstilskudd $YEAR\", \"year\": $YEAR,
  \"criteria\": [\"Styrker samhandlingen\", \"Retter seg mot prioriterte grupper\"], \"priority_groups\": [\"frail_elderly\"],
  \"frame\": 2000000, \"sustainability_cut_percent\": 20, \"deadlines\": [\"$DEADLINE\"], \"reviewers_per_application\": 2,
  \"community\": \"Helsefellesskapet i Vestfold\", \"description\": \"\"}"
complete "$ROUND" approve_call anne '{"call_approved": true}'
CALL=$($S --json instance "$ROUND" | json "d['data']['call_id']")

echo "2. Ada (Horten kommune) fills in the application; the hospital co-signs; she submits"
APP=$($S --json start grant_application --as ada --data "{\"call_id\": $CALL}" --title "Trygg hjemkomst" | json "d['id']")
complete "$APP" fill_application ada "{\"title\": \"Trygg hjemkomst\", \"purpose\": \"Tryggere utskrivning til hjemmet.\",
  \"effect_goals\": \"Færre reinnleggelser.\", \"result_goals\": \"Felles sjekkliste i bruk.\",
  \"priority_groups\": [\"frail_elderly\"], \"responsibility\": \"Horten kommune.\", \"roles\": \"Prosjektleder i kommunen.\",
  \"applicant_organisation\": \"Horten kommune\", \"partner_organisations\": [\"Sykehuset i Vestfold HF\"],
  \"budget\": [{\"party\": \"Horten kommune\", \"year\": $NEXT, \"amount\": 200000},
               {\"party\": \"Sykehuset i Vestfold HF\", \"year\": $NEXT, \"amount\": 100000}],
  \"start_date\": \"$NEXT-01-01\", \"end_date\": \"$NEXT-12-31\", \"contact_name\": \"Ada\",
  \"contact_email\": \"ada@horten.example.no\"}"
complete "$APP" cosign_application bjorn '{"signature": {"signed": true}}'
complete "$APP" submit_application ada '{"confirm": true}'

echo "3. AU finds it complete (it is registered and published); two committee members review it"
complete "$APP" check_completeness per '{"complete": true}'
REVIEW='{"review": {"conflict_of_interest": false, "scores": [{"criterion": "Styrker samhandlingen", "score": 4},
  {"criterion": "Retter seg mot prioriterte grupper", "score": 5}], "comment": "God søknad."}}'
complete "$APP" review_application mia "$REVIEW"
complete "$APP" review_application tor "$REVIEW"
APPLICATION_ID=$($S --json instance "$APP" | json "d['data']['application_id']")

echo "4. The deadline passes; committee, FSU and AU prepare the case for SSU"
$S tick --now "$AFTER" > /dev/null
complete "$ROUND" committee_assessment mia '{"assessment_summary": "Anbefales.", "assessment_done": true}'
complete "$ROUND" fsu_input frida '{"fsu_input": "Støttes."}'
complete "$ROUND" au_recommendation per "{\"recommendation\": [{\"application_id\": $APPLICATION_ID,
  \"proposed_amount\": 250000, \"rank\": 1}], \"proposed_conclusion\": \"SSU innvilger 250 000 kr.\"}"
CASE=$($S --json instance "$ROUND" | json "d['data']['case_id']")

echo "5. SSU decides in its meeting (case $CASE); the decision arrives as a message"
$S message ssu_decision --correlation "case_id=\"$CASE\"" --data "{\"conclusion\": \"Innvilget.\",
  \"decisions\": [{\"application_id\": $APPLICATION_ID, \"granted\": true, \"amount\": 250000}]}"
$S --json instance "$APP" | json "'  award letter: document ' + str(d['data']['award_letter']['document_id'])"

echo "6. Ada reports status and, at the end, the final report; AU approves both"
complete "$APP" status_report ada '{"implementation": "I rute.", "goal_attainment": "Nådd.",
  "benefit_realisation": "Færre liggedøgn.", "spent": [{"party": "Horten kommune", "amount": 200000}]}'
complete "$APP" approve_status_report per '{"report_approved": true}'
complete "$APP" final_report ada '{"results": "Sjekklisten er fast rutine.", "goal_attainment": "Nådd.",
  "benefit_realisation": "Dokumentert.", "spent": [{"party": "Horten kommune", "amount": 40000}]}'
complete "$APP" approve_final_report per '{"report_approved": true}'
$S --json instance "$APP" | json "'  application instance: ' + d['status']"
$S connector ledger.balances --params "{\"year\": $YEAR, \"community\": \"Helsefellesskapet i Vestfold\"}"
