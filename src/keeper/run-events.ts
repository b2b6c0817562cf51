/*
 * The event a run's end publishes (docs/RUNS.md, "Word when a run ends"): the run keeper and the CLI publish it with
 * events:PutEvents to the default bus, RunNotifications matches it.
 */

/** The source of the events of Chronos Training runs. */
export const RUN_EVENT_SOURCE = 'chronos.training';

/** The detail-type of the event published once when a run ends. */
export const RUN_ENDED_DETAIL_TYPE = 'Chronos Training Run Ended';
