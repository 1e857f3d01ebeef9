package httpapi

import (
	"context"
	"net/http"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
)

// Request bodies. Field names are the API's; the domain's commands are built from them.
type (
	registerUserBody struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	changeEmailBody struct {
		Email string `json:"email"`
	}
	openAccountBody struct {
		OwnerID  string `json:"ownerId"`
		Currency string `json:"currency"`
	}
	amountBody struct {
		Amount int64 `json:"amount"`
	}
	addStockBody struct {
		Quantity int64 `json:"quantity"`
	}
	placeOrderBody struct {
		CustomerID      string             `json:"customerId"`
		Currency        string             `json:"currency"`
		Lines           []domain.OrderLine `json:"lines"`
		ShippingAddress domain.Address     `json:"shippingAddress"`
	}
)

// commandRoutes maps API Gateway route keys to commands. Keep it equal to the HttpApi events of
// CommandsFunction in template.yaml (TestRoutesMatchTemplate checks).
func (h *Handler) commandRoutes() map[string]route {
	c := h.cmd
	return map[string]route{
		"POST /users": {http.StatusCreated, "/users/", func(ctx context.Context, r request) (command.Result, error) {
			var b registerUserBody
			if err := decode(r.body, &b); err != nil {
				return command.Result{}, err
			}
			return c.RegisterUser(ctx, r.meta, domain.RegisterUser{UserID: r.newID, Email: b.Email, Name: b.Name})
		}},
		"PUT /users/{id}/email": {http.StatusOK, "", func(ctx context.Context, r request) (command.Result, error) {
			var b changeEmailBody
			if err := decode(r.body, &b); err != nil {
				return command.Result{}, err
			}
			return c.ChangeEmail(ctx, r.meta, r.params["id"], domain.ChangeEmail{Email: b.Email})
		}},
		"POST /users/{id}/deactivate": {http.StatusOK, "", func(ctx context.Context, r request) (command.Result, error) {
			if len(r.body) > 0 {
				if err := decode(r.body, &struct{}{}); err != nil {
					return command.Result{}, err
				}
			}
			return c.DeactivateUser(ctx, r.meta, r.params["id"])
		}},
		"DELETE /users/{id}": {http.StatusOK, "", func(ctx context.Context, r request) (command.Result, error) {
			if len(r.body) > 0 {
				if err := decode(r.body, &struct{}{}); err != nil {
					return command.Result{}, err
				}
			}
			return c.EraseUser(ctx, r.meta, r.params["id"])
		}},
		"POST /accounts": {http.StatusCreated, "/accounts/", func(ctx context.Context, r request) (command.Result, error) {
			var b openAccountBody
			if err := decode(r.body, &b); err != nil {
				return command.Result{}, err
			}
			return c.OpenAccount(ctx, r.meta, domain.OpenAccount{AccountID: r.newID, OwnerID: b.OwnerID, Currency: b.Currency})
		}},
		"POST /accounts/{id}/deposits": {http.StatusOK, "", func(ctx context.Context, r request) (command.Result, error) {
			var b amountBody
			if err := decode(r.body, &b); err != nil {
				return command.Result{}, err
			}
			return c.Deposit(ctx, r.meta, r.params["id"], domain.Deposit{Amount: b.Amount})
		}},
		"POST /accounts/{id}/withdrawals": {http.StatusOK, "", func(ctx context.Context, r request) (command.Result, error) {
			var b amountBody
			if err := decode(r.body, &b); err != nil {
				return command.Result{}, err
			}
			return c.Withdraw(ctx, r.meta, r.params["id"], domain.Withdraw{Amount: b.Amount})
		}},
		"POST /inventory/{sku}/stock": {http.StatusOK, "", func(ctx context.Context, r request) (command.Result, error) {
			var b addStockBody
			if err := decode(r.body, &b); err != nil {
				return command.Result{}, err
			}
			return c.AddStock(ctx, r.meta, domain.AddStock{SKU: r.params["sku"], Quantity: b.Quantity})
		}},
		"POST /orders": {http.StatusAccepted, "/orders/", func(ctx context.Context, r request) (command.Result, error) {
			var b placeOrderBody
			if err := decode(r.body, &b); err != nil {
				return command.Result{}, err
			}
			return c.PlaceOrder(ctx, r.meta, domain.PlaceOrder{OrderID: r.newID, CustomerID: b.CustomerID, Currency: b.Currency, Lines: b.Lines, ShippingAddress: b.ShippingAddress})
		}},
	}
}
