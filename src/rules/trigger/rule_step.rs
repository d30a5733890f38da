//! One rule's execution within a run: its input from the run state, its merge patch applied.

use super::*;

pub(super) fn rule_step(
    session: &mut Session<'_>,
    item: &PreparedItem,
    input: &[u8],
    deadline: Duration,
    can_redirect: bool,
    state: &mut RunState,
    record: &mut ExecutionRecord,
) -> Step {
    let output = match execute(session, item, input, deadline, record) {
        Ok(output) => output,
        Err(step) => return step,
    };
    match deny_of(&output) {
        Some(Ok(message)) => {
            record.outcome = Outcome::Denied;
            return Step::End(TriggerOutcome::Deny {
                message,
                code: None,
            });
        }
        Some(Err(why)) => {
            return failed(
                item,
                record,
                FailureKind::BadOutput,
                Failure::BadOutput(why).detail(),
            );
        }
        None => {}
    }
    // A skip-rule's bad output must not leave half a patch behind: apply it to copies.
    let (mut next_user, mut next_context) = if item.on_failure == OnFailure::Skip {
        (state.user.clone(), state.context.clone())
    } else {
        (
            std::mem::take(&mut state.user),
            std::mem::take(&mut state.context),
        )
    };
    match apply(&output, &mut next_user, &mut next_context, can_redirect) {
        Ok(notes) => {
            record.logs.extend(notes.into_iter().map(LogLine::warn));
            (state.user, state.context) = (next_user, next_context);
            state.executed_rules.push(item.id.clone());
            // Rules run before actions, but nothing an action was sent may outlive a change.
            state.action_texts = ActionTexts::default();
            Step::Next
        }
        Err(NotApplied::Malformed(why)) => {
            if item.on_failure != OnFailure::Skip {
                (state.user, state.context) = (next_user, next_context);
                state.action_texts = ActionTexts::default();
            }
            failed(
                item,
                record,
                FailureKind::BadOutput,
                Failure::BadOutput(why).detail(),
            )
        }
        // Never skipped: the rule made it a condition of the login.
        Err(NotApplied::Unsupported(message)) => {
            record.fail(FailureKind::Unsupported, message.clone());
            Step::End(TriggerOutcome::Deny {
                message,
                code: None,
            })
        }
    }
}
