package projection

// Attribute and index names of the read-model table: the one spelling of them, written by
// [Change] and read by package query (whose read-model structs' tags a test holds to these).
// There is one item per source stream.
const (
	// AttrKey is the partition key: the ID of the source stream ("user-…", "order-…").
	AttrKey = "pk"
	// AttrVersion is the version of the source stream the item reflects (see the package doc).
	AttrVersion = "v"
	// AttrUpdatedAt is when the event of AttrVersion was recorded, in store.TimeLayout.
	AttrUpdatedAt = "updatedAt"
	// AttrKind is the item's kind: "user", "account", "inventory", "order" or "fulfilment".
	AttrKind = "kind"

	// A user's item (personal: email and name).
	AttrUserID     = "userId"
	AttrEmail      = "email"
	AttrName       = "name"
	AttrUserStatus = "userStatus" // the partition key of IndexUsersByStatus

	// An account's item.
	AttrAccountID = "accountId"
	AttrOwnerID   = "ownerId"
	AttrCurrency  = "currency" // of accounts and orders
	AttrBalance   = "balance"

	// An inventory item's item.
	AttrSKU      = "sku"
	AttrOnHand   = "onHand"
	AttrReserved = "reserved"

	// An order's item.
	AttrOrderID      = "orderId"    // of orders and runs
	AttrCustomerID   = "customerId" // the partition key of IndexOrdersByCustomer
	AttrOrderStatus  = "orderStatus"
	AttrTotal        = "total"
	AttrLineCount    = "lineCount"
	AttrCancelReason = "cancelReason" // of orders and runs

	// A fulfilment run's item (no personal data: runs hold none; never customerId, which would
	// list the run among the customer's orders in IndexOrdersByCustomer).
	AttrRunStep = "step"
	// AttrDeadline is a map: AttrDeadlineAt (store.TimeLayout) and AttrDeadlinePending (the run
	// still waits on it: reserving or charging, and it has not passed).
	AttrDeadline        = "deadline"
	AttrDeadlineAt      = "at"
	AttrDeadlinePending = "pending"
	// AttrLastError is the last refusal a reply recorded ("reserve SKU-2: insufficient-stock");
	// absent when there was none.
	AttrLastError = "lastError"
	AttrFinished  = "finished"  // domain.Fulfilment.Finished
	AttrDecisions = "decisions" // the decisions version the run started under
	// AttrSteps is a list of maps, one per event of the run (the newest MaxRunSteps): AttrStepName
	// (the step the event led to), AttrStepAt (when it was recorded, store.TimeLayout),
	// AttrStepEventType and AttrStepVersion.
	AttrSteps         = "steps"
	AttrStepName      = "step"
	AttrStepAt        = "at"
	AttrStepEventType = "eventType"
	AttrStepVersion   = "version"
	// AttrWaitingPartition and AttrWaitingUntil key IndexRunsByDeadline. Both are present from
	// the run's start until it finishes, so the index is sparse: it holds the unfinished runs,
	// and no others (one past its deadline is stuck, whatever its step). AttrWaitingPartition is always WaitingPartition;
	// AttrWaitingUntil is the deadline in store.TimeLayout, which sorts as text.
	AttrWaitingPartition = "waitingPartition"
	AttrWaitingUntil     = "waitingUntil"
)

// WaitingPartition is the one value of AttrWaitingPartition. One partition of
// IndexRunsByDeadline takes every unfinished run: a partition takes up to 1,000 write units a
// second, and a run writes the index once per change of step (its projected attribute) and once
// when it finishes (its keys go): about five times for a confirmed order, so it carries some 200
// orders a second. Past that, shard it (WaitingPartition plus a hash of the order ID modulo N) and query
// the N partitions.
const WaitingPartition = "runs"

// KindRun is the AttrKind of a fulfilment run's item.
const KindRun = "fulfilment"

// MaxRunSteps bounds the steps a run's item lists: the newest ones are kept. A run has a few
// events (a start, a handful of replies, perhaps its deadline); the bound keeps the item small
// whatever happens. The run's whole history stays in the event store (its audit trail).
const MaxRunSteps = 100

// Indexes of the read-model table (template.yaml declares them).
const (
	// IndexUsersByStatus lists users by AttrUserStatus.
	IndexUsersByStatus = "UsersByStatus"
	// IndexOrdersByCustomer lists orders by AttrCustomerID.
	IndexOrdersByCustomer = "OrdersByCustomer"
	// IndexRunsByDeadline lists the unfinished runs, by their deadline (AttrWaitingUntil)
	// (sparse: see AttrWaitingPartition). It projects AttrOrderID and AttrRunStep.
	IndexRunsByDeadline = "RunsByDeadline"
)
