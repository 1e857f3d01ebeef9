package app

// The saga's graph goes here, built as the others are: a SagaConfig with Validate (every problem
// at once) and SagaFromEnv in config.go, and Saga(cfg, Clients, log, metrics) building on
// sealedStore and consumer.New, as Projector does; functions/saga and any operator command that
// drives it call Saga.
