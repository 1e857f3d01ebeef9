package httpapi

import (
	"context"
	"net/http"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
)

// Request bodies. Field names are the API's; the domain's commands are built from them.
type (
	// registerUserBody names no user ID: the user is the caller, their ID the token's subject.
	registerUserBody struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	changeEmailBody struct {
		Email string `json:"email"`
	}
	// openAccountBody names no owner: the account is the caller's.
	openAccountBody struct {
		Currency string `json:"currency"`
	}
	amountBody struct {
		Amount int64 `json:"amount"`
	}
	addStockBody struct {
		Quantity int64 `json:"quantity"`
	}
	// placeOrderBody names no customer: the order is the caller's, paid from one of the
	// caller's accounts.
	placeOrderBody struct {
		PaymentAccountID string             `json:"paymentAccountId"`
		Currency         string             `json:"currency"`
		Lines            []domain.OrderLine `json:"lines"`
		ShippingAddress  domain.Address     `json:"shippingAddress"`
	}
)

// commandRoutes maps API Gateway route keys to commands. Keep it equal to the HttpApi events of
// CommandsFunction in template.yaml (TestRoutesMatchTemplate checks).
func (h *Handler) commandRoutes() map[string]route {
	c := h.cmd
	return map[string]route{
		"POST /users": {http.StatusCreated, "/users/", withBody(func(ctx context.Context, r request, b registerUserBody) (command.Result, error) {
			return c.RegisterUser(ctx, r.meta, domain.RegisterUser{Email: b.Email, Name: b.Name})
		})},
		"PUT /users/{id}/email": {http.StatusOK, "", withBody(func(ctx context.Context, r request, b changeEmailBody) (command.Result, error) {
			return c.ChangeEmail(ctx, r.meta, r.params["id"], domain.ChangeEmail{Email: b.Email})
		})},
		"POST /users/{id}/deactivate": {http.StatusOK, "", noBody(func(ctx context.Context, r request) (command.Result, error) {
			return c.DeactivateUser(ctx, r.meta, r.params["id"])
		})},
		"DELETE /users/{id}": {http.StatusOK, "", noBody(func(ctx context.Context, r request) (command.Result, error) {
			return c.EraseUser(ctx, r.meta, r.params["id"])
		})},
		"POST /accounts": {http.StatusCreated, "/accounts/", withBody(func(ctx context.Context, r request, b openAccountBody) (command.Result, error) {
			return c.OpenAccount(ctx, r.meta, domain.OpenAccount{AccountID: r.newID, Currency: b.Currency})
		})},
		"POST /accounts/{id}/deposits": {http.StatusOK, "", withBody(func(ctx context.Context, r request, b amountBody) (command.Result, error) {
			return c.Deposit(ctx, r.meta, r.params["id"], domain.Deposit{Amount: b.Amount})
		})},
		"POST /accounts/{id}/withdrawals": {http.StatusOK, "", withBody(func(ctx context.Context, r request, b amountBody) (command.Result, error) {
			return c.Withdraw(ctx, r.meta, r.params["id"], domain.Withdraw{Amount: b.Amount})
		})},
		"POST /inventory/{sku}/stock": {http.StatusOK, "", withBody(func(ctx context.Context, r request, b addStockBody) (command.Result, error) {
			return c.AddStock(ctx, r.meta, domain.AddStock{SKU: r.params["sku"], Quantity: b.Quantity})
		})},
		"POST /orders": {http.StatusAccepted, "/orders/", withBody(func(ctx context.Context, r request, b placeOrderBody) (command.Result, error) {
			return c.PlaceOrder(ctx, r.meta, domain.PlaceOrder{OrderID: r.newID, PaymentAccountID: b.PaymentAccountID,
				Currency: b.Currency, Lines: b.Lines, ShippingAddress: b.ShippingAddress})
		})},
	}
}

// withBody is a command route with a JSON body: it decodes the body into a B, strictly (see
// decode), then runs the command.
func withBody[B any](run func(ctx context.Context, r request, b B) (command.Result, error)) func(context.Context, request) (command.Result, error) {
	return func(ctx context.Context, r request) (command.Result, error) {
		var b B
		if err := decode(r.body, &b); err != nil {
			return command.Result{}, err
		}
		return run(ctx, r, b)
	}
}

// noBody is a command route that takes no body: none, or an empty JSON object.
func noBody(run func(ctx context.Context, r request) (command.Result, error)) func(context.Context, request) (command.Result, error) {
	return func(ctx context.Context, r request) (command.Result, error) {
		if len(r.body) > 0 {
			if err := decode(r.body, &struct{}{}); err != nil {
				return command.Result{}, err
			}
		}
		return run(ctx, r)
	}
}
