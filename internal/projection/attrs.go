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
	// AttrKind is the item's kind: "user", "account", "inventory" or "order".
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
	AttrOrderID      = "orderId"
	AttrCustomerID   = "customerId" // the partition key of IndexOrdersByCustomer
	AttrOrderStatus  = "orderStatus"
	AttrTotal        = "total"
	AttrLineCount    = "lineCount"
	AttrCancelReason = "cancelReason"
)

// Indexes of the read-model table (template.yaml declares them).
const (
	// IndexUsersByStatus lists users by AttrUserStatus.
	IndexUsersByStatus = "UsersByStatus"
	// IndexOrdersByCustomer lists orders by AttrCustomerID.
	IndexOrdersByCustomer = "OrdersByCustomer"
)
